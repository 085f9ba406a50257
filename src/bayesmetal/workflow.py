"""One analysis from configuration to results in memory: data, design, models, fits, summaries.

Nothing here writes files (runs.py does) or reads argv (cli.py does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
from matplotlib.figure import Figure

from bayesmetal import diagnostics, plots
from bayesmetal import priors as prior_lib
from bayesmetal.arviz_api import InferenceData, attach_data, rank_plot, stored_data
from bayesmetal.cohort import AnalysisTable, load_cohort
from bayesmetal.config import BkmrSpec, BwqsSpec, GlmSpec, RunConfig, SamplerSpec, parse_config
from bayesmetal.design import Design, make_design
from bayesmetal.errors import ConfigError
from bayesmetal.models import bkmr, bwqs, glm
from bayesmetal.runs import saved_run
from bayesmetal.sampling import sample
from bayesmetal.summaries import bkmr as bkmr_summary
from bayesmetal.summaries import bwqs as bwqs_summary
from bayesmetal.summaries import glm as glm_summary
from bayesmetal.tabular import load_table


@dataclass
class PlannedFit:
    """A declared model waiting to be sampled, and the variables to diagnose.

    `runner` replaces PyMC's sampler for models with a dedicated one (BKMR's Gibbs path);
    `model` is then the declaration it samples, when small enough to build.
    """

    label: str
    model: pm.Model | None
    runner: Callable[[SamplerSpec, int], InferenceData] | None = None
    variables: list[str] | None = None

    @property
    def var_names(self) -> list[str]:
        if self.variables is not None:
            return self.variables
        scalar_like = [
            v.name
            for v in self.model.free_RVs
            if "obs" not in self.model.named_vars_to_dims.get(v.name, ())
        ]
        derived = [v.name for v in self.model.deterministics]
        return scalar_like + derived


@dataclass
class Plan:
    """Everything decided before sampling."""

    config: RunConfig
    table: AnalysisTable | None  # None when rebuilt from a run folder (plan_from_run)
    design: Design
    priors: dict[str, dict[str, Any]]
    fits: list[PlannedFit]


@dataclass
class Results:
    """Posterior draws, convergence checks, tidy tables and figures of a run."""

    plan: Plan
    idatas: dict[str, InferenceData]
    diagnostics: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        draws = max(idata.posterior.sizes["draw"] for idata in self.idatas.values())
        return diagnostics.verdict(
            self.diagnostics, draws, self.plan.config.summaries.targets.min_ess
        )


def load_data(config: RunConfig, data_dir: Path | None = None) -> AnalysisTable:
    """The analysis table from the NHANES cohort or the user's table."""
    if config.table is not None:
        return load_table(config.table)
    return load_cohort(config.cohort, Path(data_dir or config.data.nhanes_dir))


def build_design(config: RunConfig, table: AnalysisTable) -> Design:
    """Choose outcome, exposures and covariates, then transform and code them."""
    model = config.model
    quantiles = getattr(model, "quantiles", 4)
    # a grouping column: BWQS's hierarchical b1, or BKMR's random intercept
    group = getattr(model, "group", None) or getattr(model, "random_intercept", None)
    if config.table is not None:
        outcome, exposures, covariates = (
            config.table.outcome,
            config.table.exposures,
            config.table.covariates,
        )
    else:
        outcome = config.analysis.outcome
        exposures = config.analysis.exposures or table.exposure_names
        covariates = config.analysis.covariates or list(table.covariates)
    family = table.outcomes[outcome]
    if family not in ("gaussian", "bernoulli"):
        raise ConfigError(
            f"analysis.outcome {outcome!r} is {family}; models take gaussian or bernoulli"
        )
    if group is not None and group not in table.frame.columns:
        key = "model.random_intercept" if isinstance(model, BkmrSpec) else "model.group"
        raise ConfigError(f"{key} {group!r} is not a column of the analysis table")
    source = config.table.path if config.table is not None else f"cohort {config.cohort.name!r}"
    ids = (config.table.id if config.table is not None else None) or "SEQN"
    return make_design(
        table.frame,
        outcome,
        family,
        exposures,
        covariates,
        quantiles,
        group,
        id_column=ids,
        source=source,
    )


def default_priors(config: RunConfig, design: Design) -> dict[str, dict[str, Any]]:
    """The selected model's default priors for this outcome family."""
    if isinstance(config.model, GlmSpec):
        return glm.default_priors(design.family)
    if isinstance(config.model, BkmrSpec):
        return bkmr.default_priors(design, config.model)
    return bwqs.default_priors(config.model, design.family)


def declare_models(config: RunConfig, design: Design, priors) -> list[PlannedFit]:
    """One model (multi-metal, BWQS) or one per exposure (single, quantile + trend)."""
    spec = config.model
    if isinstance(spec, BkmrSpec):
        return [bkmr_fit(design, spec, priors)]
    if isinstance(spec, BwqsSpec):
        return [PlannedFit("bwqs", bwqs.build_bwqs(design, spec, priors))]
    if spec.kind == "multi":
        return [PlannedFit("multi", glm.build_glm(design, design.multi_terms(), priors))]
    fits = []
    for exposure in design.exposures:
        if spec.kind == "single":
            fits.append(
                PlannedFit(
                    fit_label("single", exposure),
                    glm.build_glm(design, design.single_terms(exposure), priors),
                )
            )
        else:
            fits.append(
                PlannedFit(
                    fit_label("quantile", exposure),
                    glm.build_glm(design, design.quantile_terms(exposure), priors),
                )
            )
            fits.append(
                PlannedFit(
                    fit_label("trend", exposure),
                    glm.build_glm(design, design.trend_terms(exposure), priors),
                )
            )
    labels = [fit.label for fit in fits]
    if len(set(labels)) < len(labels):
        raise ConfigError(
            f"exposures {', '.join(design.exposures)} give clashing file names {labels}; "
            "rename them to differ in letters or digits"
        )
    return fits


def fit_label(kind: str, exposure: str) -> str:
    """A per-exposure fit's label, which names its files (idata_<label>.nc, rank_<label>.png):
    anything but letters, digits, '.', '_' and '-' becomes '_', so an exposure named
    'Pb (ug/dL)' or '../x' can neither break nor escape the run folder."""
    return f"{kind}_{re.sub(r'[^A-Za-z0-9._-]', '_', exposure)}"


def bkmr_fit(design: Design, spec: BkmrSpec, priors) -> PlannedFit:
    """BKMR: the PyMC model (reference path), or the Gibbs runner on the same priors."""
    variables = ["beta", "lambda", "r"] if design.X.shape[1] else ["lambda", "r"]
    if design.family == "gaussian":
        variables.insert(1, "sigma_sq")
    if spec.random_intercept:
        variables.append("lambda_ri")
    if spec.selection != "none":
        variables += ["delta", "pi"]
    if spec.sampler == "pymc":
        return PlannedFit("bkmr", bkmr.build_bkmr(design, spec, priors), variables=variables)

    def run(sampler: SamplerSpec, offset: int) -> InferenceData:
        return bkmr.sample_gibbs(design, spec, priors, sampler)

    return PlannedFit("bkmr", None, runner=run, variables=variables)


def plan(config: RunConfig, data_dir: Path | None = None) -> Plan:
    """Data, design, resolved priors and declared models: everything but sampling."""
    if config.model is None:
        raise ConfigError(f"{config.source}: no 'model:' section; nothing to fit")
    table = load_data(config, data_dir)
    design = build_design(config, table)
    defaults = default_priors(config, design)
    resolved = prior_lib.resolve(defaults, config.priors, config.model.name)
    prior_lib.check_values(resolved, defaults)
    return Plan(config, table, design, resolved, declare_models(config, design, resolved))


def prior_predictive(plan_: Plan, draws: int = 200) -> pd.DataFrame:
    """Prior predictive check: the spread of simulated outcomes next to the observed ones."""
    rows = []
    y = plan_.design.y
    for i, fit in enumerate(plan_.fits):
        if fit.model is None:
            continue
        with fit.model:
            prior = pm.sample_prior_predictive(
                draws=draws, random_seed=plan_.config.sampler.seed + i
            )
        simulated = prior.prior_predictive["y"].to_numpy().ravel()
        rows.append(
            {
                "fit": fit.label,
                "observed_mean": y.mean(),
                "observed_sd": y.std(),
                "prior_pred_p05": np.quantile(simulated, 0.05),
                "prior_pred_p50": np.quantile(simulated, 0.5),
                "prior_pred_p95": np.quantile(simulated, 0.95),
            }
        )
    return pd.DataFrame(rows)


def summarise(plan_: Plan, idatas: dict[str, InferenceData]) -> Results:
    """Diagnostics, effect/weight tables and figures from the fitted models."""
    config, design = plan_.config, plan_.design
    prob = config.summaries.ci_prob
    checks = pd.concat(
        [
            diagnostics.check(idatas[f.label], f.var_names, config.summaries.targets, f.label)
            for f in plan_.fits
        ],
        ignore_index=True,
    )
    results = Results(plan_, idatas, checks)
    title = f"{design.outcome} ({config.model.name})"
    if isinstance(config.model, GlmSpec):
        effects = pd.concat(
            [
                glm_summary.effects(idatas[f.label], design.family, prob, f.label)
                for f in plan_.fits
            ],
            ignore_index=True,
        )
        results.tables["effects"] = effects
        results.figures["forest"] = plots.forest(effects, title)
    elif isinstance(config.model, BkmrSpec):
        bkmr_summaries(plan_, idatas["bkmr"], results)
    else:
        weights = bwqs_summary.weights(idatas["bwqs"], prob)
        results.tables["weights"] = weights
        results.tables["index_effects"] = bwqs_summary.index_effects(
            idatas["bwqs"], design.family, prob
        )
        results.figures["weights"] = plots.weight_bars(weights, title)
    for fit in plan_.fits:
        names = [n for n in fit.var_names if n not in ("gamma", "beta", "delta")]
        results.figures[f"rank_{fit.label}"] = rank_plot(idatas[fit.label], names)
    return results


def bkmr_summaries(plan_: Plan, idata: InferenceData, results: Results) -> None:
    """PIPs, exposure-response curves and risk summaries, with their figures."""
    spec, design, config = plan_.config.model, plan_.design, plan_.config
    prob, seed = config.summaries.ci_prob, config.sampler.seed
    knots = stored_data(idata, "constant_data").get("knots")  # those the chains used
    post = bkmr_summary.h_posterior(idata, design, spec.draws_for_h, knots)
    tables = results.tables
    if spec.selection != "none":
        tables["pips"] = bkmr_summary.pips(idata, spec.groups)
        results.figures["pips"] = plots.pip_bars(tables["pips"])
        ranked = tables["pips"].sort_values("pip", ascending=False)["variable"].tolist()
    else:
        ranked = list(design.exposures)
    if spec.groups:
        tables["group_risk"] = bkmr_summary.group_risk(post, spec.groups, seed=seed, prob=prob)
    tables["univariate"] = bkmr_summary.with_concentration(
        bkmr_summary.pred_resp_univar(post, spec.ngrid, seed=seed, prob=prob), design
    )
    tables["overall_risk"] = bkmr_summary.overall_risk(post, seed=seed, prob=prob)
    tables["single_var_risk"] = bkmr_summary.single_var_risk(post, seed=seed, prob=prob)
    tables["single_var_interaction"] = bkmr_summary.single_var_interaction(
        post, seed=seed, prob=prob
    )
    pairs = [(a, b) for a in ranked[:3] for b in ranked[:3] if a != b]
    tables["bivariate_levels"] = bkmr_summary.with_concentration(
        bkmr_summary.pred_resp_bivar_levels(post, pairs, spec.ngrid, seed=seed, prob=prob),
        design,
        variable="variable1",
        z="z1",
        column="concentration1",
    )
    results.figures["univariate"] = plots.univariate_panel(tables["univariate"], design.outcome)
    results.figures["bivariate_levels"] = plots.bivariate_levels(tables["bivariate_levels"])
    results.figures["overall_risk"] = plots.risk_plot(
        tables["overall_risk"], "quantile", "overall risk vs all at median"
    )
    results.figures["single_var_risk"] = plots.single_var_risk_plot(tables["single_var_risk"])


def extend(plan_: Plan, previous: InferenceData) -> dict[str, InferenceData]:
    """Continue a saved BKMR Gibbs run by sampler.draws more draws per chain, once the model,
    priors, data, knots and seed are checked to be the saved run's (only the draws differ)."""
    spec = plan_.config.model
    if not isinstance(spec, BkmrSpec) or spec.sampler != "gibbs":
        raise ConfigError("--extend works for BKMR runs with the gibbs sampler")
    differences = extension_differences(plan_, previous)
    if differences:
        raise ConfigError(f"--extend: the saved run differs in: {', '.join(differences)}")
    idata = bkmr.extend_gibbs(previous, plan_.design, spec, plan_.priors, plan_.config.sampler)
    store_data(plan_, idata)
    return {"bkmr": idata}


def sample_fits(plan_: Plan) -> dict[str, InferenceData]:
    """Sample every declared model (seed + i for the i-th); each idata also stores the data
    its summaries read (store_data)."""
    sampler = plan_.config.sampler
    idatas = {
        f.label: f.runner(sampler, i) if f.runner else sample(f.model, sampler, seed_offset=i)
        for i, f in enumerate(plan_.fits)
    }
    for idata in idatas.values():
        store_data(plan_, idata)
    return idatas


def fit(plan_: Plan) -> Results:
    """Sample and summarise in memory (fit.py saves the posterior in between)."""
    return summarise(plan_, sample_fits(plan_))


# Design fields stored as arrays (dims in the idata); the others go to attrs as JSON
DESIGN_ARRAYS = {
    "y": ("obs",),
    "concentrations": ("obs", "exposure"),
    "log_exposures": ("obs", "exposure"),
    "z": ("obs", "exposure"),
    "log_centre": ("exposure",),
    "log_scale": ("exposure",),
    "quantiles": ("obs", "exposure"),
    "X": ("obs", "covariate"),
    "ids": ("obs",),
    "group": ("obs",),
    "weights": ("obs",),
}
DESIGN_ATTR = "bayesmetal_design"


def fit_knots(plan_: Plan) -> np.ndarray | None:
    """BKMR's knot locations (the same choice as the sampler's), or None."""
    spec = plan_.config.model
    if not isinstance(spec, BkmrSpec):
        return None
    return bkmr.knots_for(plan_.design, spec, plan_.config.sampler.seed)


def store_data(plan_: Plan, idata: InferenceData) -> None:
    """Put the design into a fit's idata (y in observed_data; X, z, the other arrays and BKMR's
    knots in constant_data; names and scalars in attrs), so that summaries and --extend's
    checks need the run folder alone, not the data files."""
    design = plan_.design
    coords = {
        "obs": list(range(design.n)),
        "exposure": list(design.exposures),
        "covariate": list(design.covariate_columns),
    }
    arrays = {
        name: (dims, np.asarray(getattr(design, name)))
        for name, dims in DESIGN_ARRAYS.items()
        if getattr(design, name) is not None
    }
    if arrays["ids"][1].dtype == object:  # netCDF stores text, not Python objects
        arrays["ids"] = (("obs",), arrays["ids"][1].astype(str))
    knots = fit_knots(plan_)
    if knots is not None:
        arrays["knots"] = (("knot", "exposure"), knots)
        coords["knot"] = list(range(len(knots)))
    attach_data(idata, "observed_data", {"y": arrays.pop("y")}, coords)
    attach_data(idata, "constant_data", arrays, coords)
    scalars = [f.name for f in fields(Design) if f.name not in DESIGN_ARRAYS]
    idata.attrs[DESIGN_ATTR] = json.dumps({name: getattr(design, name) for name in scalars})


def design_from_idata(idata: InferenceData) -> Design:
    """The Design a fit was sampled on, rebuilt from what store_data put in its idata."""
    if DESIGN_ATTR not in idata.attrs:
        raise ConfigError(
            f"the run's idata has no {DESIGN_ATTR} attribute (written by an older version); "
            "refit it"
        )
    scalars = json.loads(idata.attrs[DESIGN_ATTR])
    for name in ("exposures", "covariate_columns", "group_levels"):
        scalars[name] = tuple(scalars[name])
    scalars["covariate_scaling"] = {k: tuple(v) for k, v in scalars["covariate_scaling"].items()}
    arrays = stored_data(idata, "observed_data") | stored_data(idata, "constant_data")
    return Design(**scalars, **{name: arrays.get(name) for name in DESIGN_ARRAYS})


def plan_from_run(idatas: dict[str, InferenceData]) -> Plan:
    """The Plan of a saved run from its idata alone (config, priors, design): summaries are
    recomputed without the data files."""
    first = next(iter(idatas.values()))
    saved = saved_run(first)
    config = parse_config(saved.config, saved.config.get("source") or "saved run")
    design = design_from_idata(first)
    return Plan(config, None, design, saved.priors, declare_models(config, design, saved.priors))


# config keys that decide the posterior --extend continues; the sampler's other settings,
# summaries, output and where the data file lies may change
EXTEND_COMPARED = ("cohort", "table", "analysis", "model", "sampler.seed")
EXTEND_FREE = ("table.path", "model.draws_for_h", "model.ngrid")


def extension_differences(plan_: Plan, previous: InferenceData) -> list[str]:
    """What --extend would silently mix: config keys, priors, data and knots that differ
    between the saved run and this plan."""
    saved = saved_run(previous)
    before = _flatten(saved.config)
    after = _flatten(plan_.config.model_dump(mode="json", by_alias=True))
    found = [
        f"{key} ({_short(before.get(key))} -> {_short(after.get(key))})"
        for key in dict.fromkeys([*before, *after])
        if _extend_compared(key) and before.get(key) != after.get(key)
    ]
    priors = json.loads(json.dumps(plan_.priors))
    found += [
        f"priors.{name}"
        for name in dict.fromkeys([*saved.priors, *priors])
        if saved.priors.get(name) != priors.get(name)
    ]
    old_design = design_from_idata(previous)
    old_sums, new_sums = saved.provenance.get("data_files_sha256", {}), plan_.table.sources
    data = [
        f"checksum of {name}"
        for name in dict.fromkeys([*old_sums, *new_sums])
        if old_sums.get(name) != new_sums.get(name)
    ]
    data += [
        name
        for name in ("y", "X", "z", "group")
        if not _same_array(getattr(old_design, name), getattr(plan_.design, name))
    ]
    if data:
        found.append(f"data ({', '.join(data)} differ{'s' if len(data) == 1 else ''})")
    if not _same_array(stored_data(previous, "constant_data").get("knots"), fit_knots(plan_)):
        found.append("knots")
    return found


def _extend_compared(key: str) -> bool:
    """Whether a flattened config key takes part in --extend's check."""

    def within(prefixes: tuple[str, ...]) -> bool:
        return any(key == p or key.startswith(f"{p}.") for p in prefixes)

    return within(EXTEND_COMPARED) and not within(EXTEND_FREE)


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as {'a.b.c': leaf}."""
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _short(value: Any, width: int = 40) -> str:
    """A config value cut to fit in a one-line message."""
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _same_array(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Equal shapes and values, or both absent."""
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and np.array_equal(a, b)
