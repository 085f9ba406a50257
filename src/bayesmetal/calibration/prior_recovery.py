"""Prior recovery: where the likelihood cannot see a parameter, the BKMR sampler must return
its prior.

Two settings: the likelihood switched off (`BkmrData(likelihood=False)`: every parameter
must follow its prior, a check of every move's prior and proposal terms), and constant
exposures (the kernel is 1 whatever r is, so r, delta and pi must follow their priors while
the likelihood runs as usual). Each check is a probability the prior fixes (an inclusion
probability, P(lambda < its prior median), ...) against the chains' estimate, in units of
its Monte Carlo standard error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bayesmetal.arviz_api import mcse_mean
from bayesmetal.bkmr import priors as bkmr_priors
from bayesmetal.bkmr.priors import DEFAULT_PRIORS
from bayesmetal.bkmr.sampler import BkmrData, Chain, sample_chains

QUANTILES = (0.25, 0.5, 0.9)
VARIANTS = ("exact", "knots", "hierarchical", "probit", "random_intercept", "none")


def recovery_priors() -> dict[str, dict[str, Any]]:
    """The package defaults with a proper sigma2 prior (InverseGamma(0.001, 0.001) has no
    usable quantiles) and a random-intercept prior like lambda's."""
    priors = {k: dict(v) for k, v in DEFAULT_PRIORS.items()}
    priors["sigma_sq"] = {"distribution": "InverseGamma", "alpha": 3.0, "beta": 2.0}
    priors["lambda_ri"] = dict(DEFAULT_PRIORS["lambda"])
    return priors


def recovery_data(
    variant: str, likelihood: bool, n: int = 20, m: int = 4, seed: int = 0
) -> BkmrData:
    """Data for a variant: with the likelihood off (any exposures), or on with constant
    exposures (the kernel is then 1 whatever r is). Hierarchical: groups {0, 1, 2}, {3}."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r}: one of {', '.join(VARIANTS)}")
    rng = np.random.default_rng(seed)
    z = np.zeros((n, m)) if likelihood else rng.standard_normal((n, m))
    y = rng.standard_normal(n)
    return BkmrData(
        y=(y > 0).astype(float) if variant == "probit" else y,
        X=rng.standard_normal((n, 2)),
        z=z,
        knots=z[:6].copy() if variant == "knots" else None,
        selection=variant != "none",
        probit=variant == "probit",
        groups=np.array([0, 0, 0, 1, 1, 1][:m]) if variant == "hierarchical" else None,
        random_intercept=np.arange(n) % 3 if variant == "random_intercept" else None,
        likelihood=likelihood,
    )


def recover(
    variant: str, likelihood: bool = False, draws: int = 4000, chains: int = 2, seed: int = 3
) -> pd.DataFrame:
    """Run the sampler on `recovery_data` and check the prior (every parameter with the
    likelihood off; r, delta and pi with constant exposures)."""
    data = recovery_data(variant, likelihood, n=30 if likelihood else 20)
    priors = recovery_priors()
    sampled, _ = sample_chains(data, priors, tune=500, draws=draws, chains=chains, seed=seed)
    table = prior_checks(sampled, data, priors, all_parameters=not likelihood)
    return table.assign(variant=variant, likelihood="constant exposures" if likelihood else "off")


def _stack(chains: list[Chain], name: str) -> np.ndarray:
    """(chain, draw, ...) draws of one variable."""
    return np.stack([c.draws[name] for c in chains])


def _row(quantity: str, expected: float, indicator: np.ndarray) -> dict[str, Any]:
    """One check: the mean of an indicator (chain, draw) against its prior probability."""
    estimate = float(indicator.mean())
    mcse = mcse_mean(indicator)
    z = (estimate - expected) / mcse if mcse > 0 else (0.0 if estimate == expected else np.inf)
    return {"quantity": quantity, "expected": expected, "estimate": estimate, "mcse": mcse, "z": z}


def _quantile_rows(
    name: str, values: np.ndarray, quantile: Callable[[float], float], weight: float = 1.0
) -> list[dict[str, Any]]:
    """P(value < prior q-quantile) = q (times `weight` = P(the value exists), e.g. r_m's
    inclusion probability, when `values` is 0 where the parameter is absent)."""
    rows = []
    for q in QUANTILES:
        cut = quantile(q)
        indicator = (values > 0) & (values < cut) if weight < 1 else values < cut
        rows.append(_row(f"P({name} < prior q{q:g})", weight * q, indicator))
    return rows


def inclusion_probabilities(data: BkmrData, pi_mean: float) -> np.ndarray:
    """Prior P(delta_m = 1): E[pi] component-wise; E[pi] / |group| hierarchically."""
    if not data.selection:
        return np.ones(data.z.shape[1])
    if data.groups is None:
        return np.full(data.z.shape[1], pi_mean)
    sizes = np.array([np.sum(data.groups == g) for g in data.groups])
    return pi_mean / sizes


def prior_checks(
    chains: list[Chain], data: BkmrData, priors: dict[str, dict[str, Any]], all_parameters: bool
) -> pd.DataFrame:
    """Checks of delta, r, pi (and, with `all_parameters`, lambda, lambda_ri, beta, sigma2)
    against their priors; `z` is (estimate - prior value) / MCSE."""
    pi_prior = bkmr_priors.params(priors["pi"], "pi")
    pi_mean = pi_prior["alpha"] / (pi_prior["alpha"] + pi_prior["beta"])
    pips = inclusion_probabilities(data, pi_mean)
    quantile_r = bkmr_priors.quantile_function(priors["r"], "r")
    rows = []
    delta, r = _stack(chains, "delta"), _stack(chains, "r")
    for j, pip in enumerate(pips):
        if data.selection:
            rows.append(_row(f"PIP[{j}]", float(pip), delta[..., j]))
        rows += _quantile_rows(f"r[{j}]", r[..., j], quantile_r, float(pip))
    if data.selection:
        pi_dist = stats.beta(pi_prior["alpha"], pi_prior["beta"])
        rows += [
            _row(f"P(pi < {q:g})", pi_dist.cdf(q), _stack(chains, "pi") < q) for q in (0.25, 0.5)
        ]
    if data.selection and data.groups is not None:
        for g in np.unique(data.groups):
            members = np.flatnonzero(data.groups == g)
            rows.append(_row(f"group PIP[{g}]", pi_mean, delta[..., members].max(axis=-1)))
    if all_parameters:
        rows += _other_parameter_rows(chains, data, priors)
    return pd.DataFrame(rows)


def _other_parameter_rows(
    chains: list[Chain], data: BkmrData, priors: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """lambda, lambda_ri, beta and sigma2 against their priors (likelihood switched off)."""
    rows = _quantile_rows(
        "lambda",
        _stack(chains, "lambda"),
        bkmr_priors.quantile_function(priors["lambda"], "lambda"),
    )
    if data.random_intercept is not None:
        rows += _quantile_rows(
            "lambda_ri",
            _stack(chains, "lambda_ri"),
            bkmr_priors.quantile_function(priors["lambda_ri"], "lambda_ri"),
        )
    beta_prior = bkmr_priors.params(priors["beta"], "beta")
    beta = _stack(chains, "beta")
    for k in range(beta.shape[-1]):
        rows.append(_row(f"P(beta[{k}] < prior mean)", 0.5, beta[..., k] < beta_prior["mu"]))
    if not data.probit:
        rows += _quantile_rows(
            "sigma_sq",
            _stack(chains, "sigma_sq"),
            bkmr_priors.quantile_function(priors["sigma_sq"], "sigma_sq"),
        )
    return rows
