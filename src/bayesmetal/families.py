"""Likelihood + link for each outcome family, shared by every model."""

from __future__ import annotations

from typing import Any

import pymc as pm

from bayesmetal import priors as prior_lib

FAMILIES = ("gaussian", "bernoulli")
SCALE_PRIOR = {"sigma": {"distribution": "HalfNormal", "sigma": 2.5}}


def family_priors(family: str) -> dict[str, dict[str, Any]]:
    """Priors the family itself needs: the residual SD for gaussian, none for bernoulli."""
    return dict(SCALE_PRIOR) if family == "gaussian" else {}


def add_covariates(eta, design, priors: dict[str, dict[str, Any]]):
    """eta + X gamma when the design has covariates (coords 'covariate'), else eta."""
    if not design.X.shape[1]:
        return eta
    covariates = pm.Data("X", design.X, dims=("obs", "covariate"))
    gamma = prior_lib.create(priors, "gamma", dims=("covariate",))
    return eta + pm.math.dot(covariates, gamma)


def add_likelihood(family: str, eta, y, priors: dict[str, dict[str, Any]]) -> None:
    """gaussian: y ~ Normal(eta, sigma); bernoulli: y ~ Bernoulli(logit^-1(eta))."""
    if family == "gaussian":
        sigma = prior_lib.create(priors, "sigma")
        pm.Normal("y", mu=eta, sigma=sigma, observed=y, dims="obs")
    elif family == "bernoulli":
        pm.Bernoulli("y", logit_p=eta, observed=y, dims="obs")
    else:
        raise ValueError(f"unknown family {family!r}; known: {FAMILIES}")
