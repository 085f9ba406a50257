"""Bayesian GLM: y ~ family(intercept + exposure terms x beta + covariates x gamma)."""

from __future__ import annotations

from typing import Any

import pymc as pm

from bayesmetal import priors as prior_lib
from bayesmetal.design import Design, Terms
from bayesmetal.families import add_covariates, add_likelihood, family_priors

WEAK = {"distribution": "Normal", "mu": 0, "sigma": 2.5}


def default_priors(family: str) -> dict[str, dict[str, Any]]:
    """Weakly informative defaults; every one replaceable from the config's priors: block."""
    return {
        "intercept": {"distribution": "Normal", "mu": 0, "sigma": 10},
        "beta": dict(WEAK),
        "gamma": dict(WEAK),
        **family_priors(family),
    }


def build_glm(design: Design, terms: Terms, priors: dict[str, dict[str, Any]]) -> pm.Model:
    """Declare the GLM for one set of exposure terms (single, multi, quantile or trend)."""
    coords = {"term": list(terms.names), "obs": range(design.n)}
    if design.X.shape[1]:
        coords["covariate"] = list(design.covariate_columns)
    with pm.Model(coords=coords) as model:
        exposure = pm.Data("E", terms.values, dims=("obs", "term"))
        intercept = prior_lib.create(priors, "intercept")
        beta = prior_lib.create(priors, "beta", dims=("term",))
        eta = intercept + pm.math.dot(exposure, beta)
        add_likelihood(design.family, add_covariates(eta, design, priors), design.y, priors)
    return model
