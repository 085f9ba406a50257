"""Bayesian WQS (Colicino et al. 2020): g(E[y]) = b0 + b1 * sum_j w_j q_j + X gamma.

w ~ Dirichlet(alpha) over quantile scores 0..q-1. Variants: b1 constrained positive or
negative, two indices (one positive, one negative, each with its own Dirichlet), and a
hierarchical b1 that varies by a group.
"""

from __future__ import annotations

from typing import Any, Literal

import pymc as pm
from pydantic import Field, model_validator

from bayesmetal import plots
from bayesmetal import priors as prior_lib
from bayesmetal.design import Design
from bayesmetal.families import (
    FAMILIES,
    add_covariates,
    add_likelihood,
    family_priors,
    intercept_prior,
)
from bayesmetal.models.contract import Fit, Fitted, ModelDefinition, Summary, pymc_fit
from bayesmetal.priors import Priors
from bayesmetal.run_schema import ModelSpec
from bayesmetal.summaries import bwqs as bwqs_summary


class BwqsSpec(ModelSpec):
    """Bayesian WQS: Dirichlet weights over quantile scores (Colicino et al. 2020)."""

    name: Literal["bwqs"]
    quantiles: int = Field(default=4, ge=2, le=10)
    direction: Literal["positive", "negative", "free"] = "free"
    two_index: bool = False
    group: str | None = None  # hierarchical: b1 varies by this covariate

    @model_validator(mode="after")
    def _compatible(self) -> BwqsSpec:
        if self.two_index and self.direction != "free":
            raise ValueError("two_index fixes the directions itself; leave direction 'free'")
        if self.two_index and self.group is not None:
            raise ValueError("two_index and group (hierarchical) cannot be combined")
        return self

    def quantile_count(self) -> int:
        return self.quantiles

    def group_column(self) -> tuple[str, str] | None:
        return ("model.group", self.group) if self.group else None


DIRICHLET = {"distribution": "Dirichlet", "a": 1.0}
HALF = {"distribution": "HalfNormal", "sigma": 2.5}


def default_priors(spec: BwqsSpec, family: str) -> dict[str, dict[str, Any]]:
    """Defaults by variant; 'b1' is the magnitude prior when the direction is fixed."""
    priors: dict[str, dict[str, Any]] = {
        "intercept": intercept_prior(family),
        "gamma": {"distribution": "Normal", "mu": 0, "sigma": 2.5},
    }
    if spec.two_index:
        priors |= {
            "weights_pos": dict(DIRICHLET),
            "weights_neg": dict(DIRICHLET),
            "b1_pos": dict(HALF),
            "b1_neg": dict(HALF),
        }
    elif spec.group is not None:
        priors |= {
            "weights": dict(DIRICHLET),
            "b1": {
                "distribution": "Normal",
                "mu": {"distribution": "Normal", "mu": 0, "sigma": 2.5},
                "sigma": {"distribution": "HalfNormal", "sigma": 1},
                "centered": False,
            },
        }
    else:
        b1 = (
            dict(HALF)
            if spec.direction != "free"
            else {"distribution": "Normal", "mu": 0, "sigma": 2.5}
        )
        priors |= {"weights": dict(DIRICHLET), "b1": b1}
    return priors | family_priors(family)


def _signed(priors, key: str, name: str, negative: bool, dims=()):
    if not negative:
        return prior_lib.create(priors, key, name=name, dims=dims)
    magnitude = prior_lib.create(priors, key, name=f"{name}_magnitude", dims=dims)
    return pm.Deterministic(name, -magnitude, dims=dims or None)


def build_bwqs(design: Design, spec: BwqsSpec, priors: Priors) -> pm.Model:
    """Declare a BWQS model on the design's quantile scores."""
    m = len(design.exposures)
    coords = {"exposure": list(design.exposures), "obs": range(design.n)}
    if design.X.shape[1]:
        coords["covariate"] = list(design.covariate_columns)
    if spec.group is not None:
        coords["group"] = list(design.group_levels)
    with pm.Model(coords=coords) as model:
        scores = pm.Data("Q", design.quantiles.astype(float), dims=("obs", "exposure"))
        eta = prior_lib.create(priors, "intercept")
        if spec.two_index:
            for sign in ("pos", "neg"):
                w = prior_lib.create(
                    priors, f"weights_{sign}", name=f"w_{sign}", dims=("exposure",), size=m
                )
                b1 = _signed(priors, f"b1_{sign}", f"b1_{sign}", negative=(sign == "neg"))
                eta = eta + b1 * pm.math.dot(scores, w)
        else:
            w = prior_lib.create(priors, "weights", name="w", dims=("exposure",), size=m)
            index = pm.math.dot(scores, w)
            if spec.group is not None:
                b1 = prior_lib.create(priors, "b1", dims=("group",))
                group = pm.Data("group_index", design.group, dims="obs")
                eta = eta + b1[group] * index
            else:
                b1 = _signed(priors, "b1", "b1", negative=(spec.direction == "negative"))
                eta = eta + b1 * index
        add_likelihood(design, add_covariates(eta, design, priors), priors)
    return model


def fits(design: Design, spec: BwqsSpec, priors: Priors, seed: int) -> list[Fit]:
    """One fit."""
    return [pymc_fit("bwqs", build_bwqs(design, spec, priors))]


def summarise(fitted: Fitted, spec: BwqsSpec) -> Summary:
    """Weights with their intervals, index effects, and the weights' bar chart."""
    idata, prob = fitted.idatas["bwqs"], fitted.settings.ci_prob
    weights = bwqs_summary.weights(idata, prob)
    index_effects = bwqs_summary.index_effects(idata, fitted.design.family, prob)
    colours = plots.exposure_colours(fitted.design.exposures)
    figure = plots.weight_bars(weights, f"{fitted.design.outcome} (bwqs)", colours=colours)
    tables = {"weights": weights, "index_effects": index_effects}
    return Summary(tables, {"weights": figure}, headline=("weights", "index_effects"))


MODEL = ModelDefinition("bwqs", BwqsSpec, FAMILIES, default_priors, fits, summarise)
