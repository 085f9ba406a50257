"""Likelihood + link for each outcome family, shared by every model.

| family | likelihood | link | family prior | coefficient reported as |
|---|---|---|---|---|
| gaussian | Normal(eta, sigma) | identity | sigma | beta |
| bernoulli | Bernoulli(logit^-1(eta)) | logit | - | odds ratio exp(beta) |
| poisson | Poisson(exp(eta)) | log | - | rate ratio exp(beta) |
| negative_binomial | NegativeBinomial(mu = exp(eta), alpha) | log | alpha | rate ratio exp(beta) |

The outcome each family accepts (0/1, non-negative integer counts) is checked in `validate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm

from bayesmetal import priors as prior_lib

FAMILIES = ("gaussian", "bernoulli", "poisson", "negative_binomial")
SCALE_PRIOR = {"sigma": {"distribution": "HalfNormal", "sigma": 2.5}}
# NB var = mu + mu^2/alpha; exactly 1/sqrt(alpha) ~ HalfNormal(1): median 2.2, tail to Poisson
DISPERSION_PRIOR = {"alpha": {"distribution": "InverseGamma", "alpha": 0.5, "beta": 0.5}}


def intercept_prior(family: str) -> dict[str, Any]:
    """The intercept's default: Normal(0, 10) on the outcome's scale (gaussian) or the logit
    scale; Normal(0, 2.5) on the log scale of the count families, where sd 10 put mean counts
    of e^30 in the prior and overflowed its predictive draws."""
    sigma = 2.5 if family in ("poisson", "negative_binomial") else 10
    return {"distribution": "Normal", "mu": 0, "sigma": sigma}


def family_priors(family: str) -> dict[str, dict[str, Any]]:
    """Priors the family itself needs: the residual SD for gaussian, the dispersion alpha for
    negative_binomial, none for bernoulli and poisson."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {FAMILIES}")
    if family == "gaussian":
        return {key: dict(spec) for key, spec in SCALE_PRIOR.items()}
    if family == "negative_binomial":
        return {key: dict(spec) for key, spec in DISPERSION_PRIOR.items()}
    return {}


@dataclass(frozen=True)
class EffectScale:
    """How a regression coefficient of a family is reported.

    `measure` names it in tables ('beta', 'odds ratio', 'rate ratio'); `column` is the same as
    a column name ('odds_ratio'); `short` prefixes interval columns ('or_lower'); `ratio` says
    the coefficient is reported as exp(coefficient), whose null value is 1, not 0.
    """

    measure: str
    column: str
    short: str
    ratio: bool

    def transform(self, values):
        """Coefficient draws or interval ends on the reported scale (exp for a ratio)."""
        return np.exp(values) if self.ratio else values


_BETA = EffectScale("beta", "beta", "beta", ratio=False)
_ODDS = EffectScale("odds ratio", "odds_ratio", "or", ratio=True)
_RATE = EffectScale("rate ratio", "rate_ratio", "rr", ratio=True)
# family -> reporting scale: the one place summaries (GLM effects, BWQS index effects) read it
EFFECT_SCALES = {
    "gaussian": _BETA,
    "bernoulli": _ODDS,
    "poisson": _RATE,
    "negative_binomial": _RATE,
}


def effect_scale(family: str) -> EffectScale:
    """The scale on which coefficients of `family` are reported (see EFFECT_SCALES)."""
    try:
        return EFFECT_SCALES[family]
    except KeyError:
        raise ValueError(f"unknown family {family!r}; known: {FAMILIES}") from None


def add_covariates(eta, design, priors: dict[str, dict[str, Any]]):
    """eta + X gamma when the design has covariates (coords 'covariate'), else eta."""
    if not design.X.shape[1]:
        return eta
    covariates = pm.Data("X", design.X, dims=("obs", "covariate"))
    gamma = prior_lib.create(priors, "gamma", dims=("covariate",))
    return eta + pm.math.dot(covariates, gamma)


def add_likelihood(design, eta, priors: dict[str, dict[str, Any]]) -> None:
    """The design's y given the linear predictor eta, by family (the module docstring's table).

    With survey weights (`design.likelihood_weights`, normalised to sum to n) it is the weighted
    pseudo-likelihood: a potential `y_weighted` holding each person's weight x log-density,
    whose per-person gradients the design-based adjustment reads (`survey_adjust`)."""
    family, y, weights = design.family, design.y, design.likelihood_weights
    if family == "gaussian":
        dist, params = pm.Normal, {"mu": eta, "sigma": prior_lib.create(priors, "sigma")}
    elif family == "bernoulli":
        dist, params = pm.Bernoulli, {"logit_p": eta}
    elif family == "poisson":
        dist, params = pm.Poisson, {"mu": pm.math.exp(eta)}
    elif family == "negative_binomial":
        alpha = prior_lib.create(priors, "alpha")
        dist, params = pm.NegativeBinomial, {"mu": pm.math.exp(eta), "alpha": alpha}
    else:
        raise ValueError(f"unknown family {family!r}; known: {FAMILIES}")
    if weights is None:
        dist("y", **params, observed=y, dims="obs")
    else:
        pointwise = pm.logp(dist.dist(**params), y)
        pm.Potential(WEIGHTED_LIKELIHOOD, pm.math.constant(weights) * pointwise, dims="obs")


WEIGHTED_LIKELIHOOD = "y_weighted"  # the potential of a survey-weighted pseudo-likelihood
