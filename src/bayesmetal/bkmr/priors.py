"""BKMR default priors (R bkmr's kmbayes defaults), and what the Gibbs sampler reads from any
prior: compiled log-densities and quantiles, and the conjugate parameters of beta, sigma_sq and
pi, taken from PyMC's random variable whatever parametrisation the config wrote."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

from bayesmetal.errors import ConfigError
from bayesmetal.priors import from_mapping

# R bkmr defaults: lambda ~ Gamma(mean 10, sd 10); r: 1/r ~ Unif(0, 100), i.e. a Pareto(1, 0.01)
# density 0.01 / r^2 on r >= 0.01; 1/sigma2 ~ Gamma(0.001, 0.001); pi ~ Beta(1, 1). R uses a
# flat prior on beta; a wide Normal keeps the posterior proper and the prior predictive usable.
DEFAULT_PRIORS: dict[str, dict[str, Any]] = {
    "beta": {"distribution": "Normal", "mu": 0, "sigma": 10},
    "sigma_sq": {"distribution": "InverseGamma", "alpha": 0.001, "beta": 0.001},
    "lambda": {"distribution": "Gamma", "alpha": 1.0, "beta": 0.1},
    "r": {"distribution": "Pareto", "alpha": 1.0, "m": 0.01},
    "pi": {"distribution": "Beta", "alpha": 1.0, "beta": 1.0},
}
CONJUGATE = {"beta": "Normal", "sigma_sq": "InverseGamma", "pi": "Beta"}


def dist(spec: Any, key: str):
    """A PyMC distribution (unnamed) from a prior (a `Prior` or its YAML mapping), for
    log-densities and draws."""
    prior = from_mapping(spec, key)
    if any(hasattr(v, "distribution") for v in prior.parameters.values()):
        raise ConfigError(f"priors.{key}: the BKMR Gibbs sampler takes fixed prior parameters")
    if any(np.ndim(v) for v in prior.parameters.values()):
        raise ConfigError(
            f"priors.{key}: the BKMR Gibbs sampler takes one value per parameter (the same "
            "prior for every coefficient or exposure); use model.engine.sampler: pymc for others"
        )
    if prior.transform is not None or not prior.centered:
        raise ConfigError(
            f"priors.{key}: the BKMR Gibbs sampler takes a plain distribution (no 'transform' "
            "or 'centered'); use model.engine.sampler: pymc for those"
        )
    try:
        return prior.pymc_distribution.dist(**prior.parameters)
    except Exception as exc:
        raise ConfigError(f"priors.{key} = {spec}: {exc}") from exc


def logp_function(spec: dict[str, Any], key: str) -> Callable[[float], float]:
    """Compiled scalar log-density of a prior."""
    x = pt.dscalar("x")
    fn = pytensor.function([x], pm.logp(dist(spec, key), x))
    return lambda value: float(fn(value))


def quantile_function(spec: dict[str, Any], key: str) -> Callable[[float], float]:
    """The prior's quantile function (PyMC's icdf), or empirical quantiles of 4,000 prior
    draws for distributions without one; used for starting values and proposal centres."""
    prior = dist(spec, key)
    u = pt.dscalar("u")
    try:
        fn = pytensor.function([u], pm.icdf(prior, u))
        fn(0.5)
    except NotImplementedError:
        sample = np.sort(np.asarray(pm.draw(prior, draws=4000, random_seed=0), dtype=float))
        return lambda q: float(np.quantile(sample, q))
    return lambda q: float(fn(q))


def mass_outside(spec: dict[str, Any], key: str, low: float, high: float) -> float | None:
    """Prior probability below `low` or above `high` (None when PyMC has no CDF for it)."""
    x = pt.dscalar("x")
    try:
        cdf = pytensor.function([x], pt.exp(pm.logcdf(dist(spec, key), x)))
        return float(cdf(low) + 1.0 - cdf(high))
    except NotImplementedError:
        return None


def check_support(priors: dict[str, dict[str, Any]], log_bound: float, limit: float = 1e-6) -> None:
    """The Gibbs sampler covers lambda, lambda_ri and r in [e^-bound, e^bound]; a prior with
    more than `limit` of its mass outside would be silently truncated, so it is refused."""
    for key in ("r", "lambda", "lambda_ri"):
        if key not in priors:
            continue
        mass = mass_outside(priors[key], key, np.exp(-log_bound), np.exp(log_bound))
        if mass is not None and mass > limit:
            raise ConfigError(
                f"priors.{key}: {mass:.1e} of its mass lies outside [e^-{log_bound:g}, "
                f"e^{log_bound:g}], the range the BKMR Gibbs sampler covers; narrow the prior "
                "or use model.engine.sampler: pymc (which needs knots: null)"
            )


# the parameters of PyMC's random variable, in its order: whatever the config wrote (Normal
# with tau, InverseGamma or Beta with mu and sigma), the sampler reads these
CANONICAL = {
    "Normal": ("mu", "sigma"),
    "InverseGamma": ("alpha", "beta"),
    "Beta": ("alpha", "beta"),
}


def check_conjugate(priors: dict[str, Any], probit: bool = False) -> None:
    """The fast sampler updates beta, sigma_sq and pi exactly; it needs their conjugate forms."""
    for key, family in CONJUGATE.items():
        if key not in priors and (probit and key == "sigma_sq"):
            continue
        given = from_mapping(priors[key], key).distribution
        if given != family:
            raise ConfigError(
                f"priors.{key}: the BKMR Gibbs sampler needs a {family} prior here "
                f"(got {given}); use model.engine.sampler: pymc for others"
            )


def params(spec: Any, key: str) -> dict[str, float]:
    """The conjugate parameters of a Normal, InverseGamma or Beta prior, by PyMC's names
    (mu, sigma / alpha, beta), read from its random variable: parameters the config left out
    take PyMC's defaults (Normal's mu = 0)."""
    rv = dist(spec, key)
    values = [float(v.eval()) for v in rv.owner.op.dist_params(rv.owner)]
    return dict(zip(CANONICAL[from_mapping(spec, key).distribution], values, strict=True))
