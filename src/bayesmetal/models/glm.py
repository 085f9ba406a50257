"""Bayesian GLM as a registered model: y ~ family(intercept + exposure terms x beta +
covariates x gamma), one exposure at a time, all together, or in quantiles with a trend."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import pymc as pm
from pydantic import Field

from bayesmetal import plots
from bayesmetal import priors as prior_lib
from bayesmetal.design import Design, Terms
from bayesmetal.errors import ConfigError
from bayesmetal.families import (
    FAMILIES,
    add_covariates,
    add_likelihood,
    family_priors,
    intercept_prior,
)
from bayesmetal.models.contract import Fit, Fitted, ModelDefinition, Summary, fit_label, pymc_fit
from bayesmetal.priors import Priors
from bayesmetal.run_schema import ModelSpec
from bayesmetal.summaries import glm as glm_summary


class GlmSpec(ModelSpec):
    """Bayesian GLM: one exposure at a time, all together, or in quantiles with a trend."""

    name: Literal["glm"]
    kind: Literal["single", "multi", "quantile"] = "multi"
    quantiles: int = Field(default=4, ge=2, le=10)
    # effect modifier: a categorical column; each exposure term gets a slope per level, the
    # column's main effect is adjusted for, and the interaction is tested (subgroup analyses)
    by: str | None = None

    def quantile_count(self) -> int:
        return self.quantiles

    def group_column(self) -> tuple[str, str] | None:
        return ("model.by", self.by) if self.by else None

    def modifies_effects(self) -> bool:
        return self.by is not None


WEAK = {"distribution": "Normal", "mu": 0, "sigma": 2.5}


def default_priors(spec: GlmSpec | None, family: str) -> dict[str, dict[str, Any]]:
    """Weakly informative defaults; every one replaceable from the config's priors: block."""
    return {
        "intercept": intercept_prior(family),
        "beta": dict(WEAK),
        "gamma": dict(WEAK),
        **family_priors(family),
    }


def build_glm(design: Design, terms: Terms, priors: Priors) -> pm.Model:
    """Declare the GLM for one set of exposure terms (single, multi, quantile or trend)."""
    coords = {"term": list(terms.names), "obs": range(design.n)}
    if design.X.shape[1]:
        coords["covariate"] = list(design.covariate_columns)
    with pm.Model(coords=coords) as model:
        exposure = pm.Data("E", terms.values, dims=("obs", "term"))
        intercept = prior_lib.create(priors, "intercept")
        beta = prior_lib.create(priors, "beta", dims=("term",))
        eta = intercept + pm.math.dot(exposure, beta)
        add_likelihood(design, add_covariates(eta, design, priors), priors)
    return model


MIN_STRATUM = 10  # persons in each level of an effect modifier
MIN_CELL = 5  # persons with a stratified term (a quartile within a level): else prior only


def _strata_checked(design: Design, spec: GlmSpec) -> None:
    """Refuse a stratum too small to have a slope of its own, naming it."""
    counts = np.bincount(design.group, minlength=len(design.group_levels))
    small = [
        f"{lv} ({c})" for lv, c in zip(design.group_levels, counts, strict=True) if c < MIN_STRATUM
    ]
    if small:
        raise ConfigError(
            f"model.by {spec.by!r}: level(s) {', '.join(small)} have fewer than {MIN_STRATUM} "
            "persons; merge levels, or choose another modifier"
        )


def fits(design: Design, spec: GlmSpec, priors: Priors, seed: int) -> list[Fit]:
    """One model (multi-metal) or one per exposure (single; quantile dummies and trend);
    with `by:`, every exposure term has one slope per stratum."""
    if spec.by is not None:
        _strata_checked(design, spec)

    def declared_fit(label: str, terms: Terms) -> Fit:
        if spec.by is not None:
            terms = design.by_group(terms)
            counts = (terms.values != 0).sum(axis=0)
            thin = [f"{n} ({c})" for n, c in zip(terms.names, counts, strict=True) if c < MIN_CELL]
            if thin:
                raise ConfigError(
                    f"model.by {spec.by!r}: {', '.join(thin)} persons: too few for a slope of "
                    "their own; merge levels, or use fewer quantiles"
                )
        return pymc_fit(label, build_glm(design, terms, priors))

    if spec.kind == "multi":
        return [declared_fit("multi", design.multi_terms())]
    declared = []
    for exposure in design.exposures:
        if spec.kind == "single":
            terms = {"single": design.single_terms(exposure)}
        else:
            terms = {
                "quantile": design.quantile_terms(exposure),
                "trend": design.trend_terms(exposure),
            }
        for kind, term in terms.items():
            declared.append(declared_fit(fit_label(kind, exposure), term))
    labels = [fit.label for fit in declared]
    if len(set(labels)) < len(labels):
        raise ConfigError(
            f"exposures {', '.join(design.exposures)} give clashing file names {labels}; "
            "rename them to differ in letters or digits"
        )
    return declared


def summarise(fitted: Fitted, spec: GlmSpec) -> Summary:
    """Effects (or odds / rate ratios) of every fit, and their forest plot."""
    family, prob = fitted.design.family, fitted.settings.ci_prob
    effects = pd.concat(
        [glm_summary.effects(fitted.idatas[f.label], family, prob, f.label) for f in fitted.fits],
        ignore_index=True,
    )
    colours = plots.exposure_colours(fitted.design.exposures)
    design = fitted.design
    forest = plots.forest(
        effects,
        f"{design.outcome} (glm)",
        colours=colours,
        outcome=design.outcome,
        units=design.units,
    )
    tables = {"effects": effects}
    if spec.by is not None:
        levels = len(design.group_levels)
        design_df = design.survey.t_df if design.survey is not None else None
        tables["interaction"] = pd.concat(
            [
                glm_summary.interaction(fitted.idatas[f.label], spec.by, levels, f.label, design_df)
                for f in fitted.fits
            ],
            ignore_index=True,
        )
    return Summary(tables, {"forest": forest}, headline=(*tables, "forest"))


MODEL = ModelDefinition("glm", GlmSpec, FAMILIES, default_priors, fits, summarise)
