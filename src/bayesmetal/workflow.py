"""One analysis from configuration to results in memory: data, design, models, fits, summaries.

Nothing here writes files (runs.py does) or reads argv (cli.py does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm

from bayesmetal import diagnostics, engines, loo, survey_adjust
from bayesmetal import priors as prior_lib
from bayesmetal.arviz_api import InferenceData, attach_data, rank_plot, stored_data
from bayesmetal.cohort import AnalysisTable, load_cohort
from bayesmetal.config import parse_config
from bayesmetal.design import Design, make_design
from bayesmetal.errors import ConfigError
from bayesmetal.models import registry
from bayesmetal.models.contract import Fit, Fitted, check_posterior
from bayesmetal.priors import Priors
from bayesmetal.run_schema import ModelSpec, RunConfig, SamplerSpec
from bayesmetal.runs import saved_run
from bayesmetal.stages import Plan, Results
from bayesmetal.summaries.posterior import covariate_coefficients
from bayesmetal.survey_design import SurveyWeights
from bayesmetal.tabular import load_table


def load_data(config: RunConfig, data_dir: Path | None = None) -> AnalysisTable:
    """The analysis table from the NHANES cohort or the user's table."""
    survey = config.survey_design()
    if config.table is not None:
        return load_table(config.table, survey)
    return load_cohort(config.cohort, Path(data_dir or config.data.nhanes_dir), survey)


def build_design(config: RunConfig, table: AnalysisTable) -> Design:
    """Choose outcome, exposures and covariates, then transform and code them."""
    model = config.model
    grouping = model.group_column()  # (config key, column): BWQS's b1 or BKMR's intercept
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
    if grouping is not None and grouping[1] not in table.frame.columns:
        hint = " (a table loads the columns it names: list it as table.group)"
        raise ConfigError(
            f"{grouping[0]} {grouping[1]!r} is not a column of the analysis table"
            + (hint if config.table is not None else "")
        )
    frame, slopes = table.frame, 1
    if grouping is not None and model.modifies_effects():
        frame, covariates, slopes = _with_modifier(frame, covariates, *grouping)
    source = config.table.path if config.table is not None else f"cohort {config.cohort.name!r}"
    ids = (config.table.id if config.table is not None else None) or "SEQN"
    return make_design(
        frame,
        outcome,
        table.outcomes[outcome],
        exposures,
        covariates,
        model.quantile_count(),
        grouping[1] if grouping else None,
        id_column=ids,
        source=source,
        units=table.units,
        survey=_analysis_survey(config, table),
        slopes_per_exposure=slopes,
    )


MAX_STRATA = 10  # levels of an effect modifier: more is a continuous column


def _with_modifier(
    frame: pd.DataFrame, covariates: list[str], key: str, column: str
) -> tuple[pd.DataFrame, list[str], int]:
    """The table with the effect modifier coded as a factor, the covariates with its main
    effect (each stratum's own intercept shift) unless they have it already, and its number
    of levels (each exposure's slopes)."""
    levels = frame[column].dropna().unique()
    if len(levels) > MAX_STRATA:
        raise ConfigError(
            f"{key} {column!r} has {len(levels)} distinct values: an effect modifier needs a "
            f"categorical column of at most {MAX_STRATA} levels (e.g. age_group, not age)"
        )
    if len(levels) < 2:
        raise ConfigError(f"{key} {column!r} has a single level in the analysis sample")
    coded = frame.assign(**{column: pd.Categorical(frame[column])})
    return coded, covariates if column in covariates else [*covariates, column], len(levels)


def _analysis_survey(config: RunConfig, table: AnalysisTable) -> SurveyWeights | None:
    """The analysis sample's survey weights and design, with the config's interval choice."""
    spec = config.survey_design()
    if table.survey is None or spec is None:
        return None
    return replace(table.survey.weights_for(table.frame["SEQN"]), intervals=spec.intervals)


def plan(config: RunConfig, data_dir: Path | None = None) -> Plan:
    """Data, design, resolved priors and declared models: everything but sampling. The
    priors were checked when the config loaded."""
    if config.model is None:
        raise ConfigError(f"{config.source}: no 'model:' section; nothing to fit")
    table = load_data(config, data_dir)
    design = build_design(config, table)
    return Plan(config, table, design, *declare(config, design, config.priors))


def declare(
    config: RunConfig, design: Design, overrides: dict[str, Any]
) -> tuple[Priors, list[Fit]]:
    """The model's resolved priors and the fits it declares on this design."""
    defaults = registry.default_priors(config.model, design.family)
    priors = prior_lib.resolve(defaults, overrides, config.model.name)
    fits = registry.definition(config.model).fits(design, config.model, priors, config.sampler.seed)
    return priors, fits


PRIOR_PREDICTIVE_N = 300  # persons a dedicated engine's fit is declared on for the check


def prior_predictive(plan_: Plan, draws: int = 200) -> pd.DataFrame:
    """Prior predictive check: the spread of simulated outcomes next to the observed ones.

    A fit with a dedicated engine (BKMR's Gibbs) is declared in PyMC on a random subset of
    PRIOR_PREDICTIVE_N persons: each person's simulated outcome has the same prior predictive
    distribution whatever n is, and the full declaration (an n x n kernel) would be slow."""
    rows = []
    y = plan_.design.y
    for i, fit in enumerate(plan_.fits):
        row = {"fit": fit.label, "observed_mean": y.mean(), "observed_sd": y.std()}
        try:
            with _prior_declaration(plan_, fit):
                prior = pm.sample_prior_predictive(
                    draws=draws, random_seed=plan_.config.sampler.seed + i
                )
        except (ArithmeticError, ValueError) as exc:
            # numpy's samplers refuse draws out of range: R's InverseGamma(0.001, 0.001) for
            # BKMR's sigma_sq underflows to 0; wide priors on a log link give counts beyond 1e19
            row["note"] = f"not simulable: a draw overflows ({type(exc).__name__}: {exc})"
            rows.append(row)
            continue
        simulated = prior.prior_predictive["y"].to_numpy().ravel()
        for q in (0.05, 0.5, 0.95):
            row[f"prior_pred_p{round(q * 100):02d}"] = np.quantile(simulated, q)
        rows.append(row)
    return pd.DataFrame(rows)


def _prior_declaration(plan_: Plan, fit: Fit) -> pm.Model:
    """The fit's PyMC declaration for the prior predictive: unweighted (survey weights change
    the likelihood, not what the priors predict), and on at most PRIOR_PREDICTIVE_N persons
    (seeded subset) for a dedicated engine's fit."""
    design, config = plan_.design, plan_.config
    if fit.engine == engines.PYMC and design.survey is None:
        return fit.build()
    if fit.engine != engines.PYMC:
        rng = np.random.default_rng(config.sampler.seed)
        keep = np.sort(rng.choice(design.n, min(design.n, PRIOR_PREDICTIVE_N), replace=False))
        design = design.rows(keep)
    declared = registry.definition(config.model).fits(
        replace(design, survey=None), config.model, plan_.priors, config.sampler.seed
    )
    return next(f for f in declared if f.label == fit.label).build()


def summarise(plan_: Plan, idatas: dict[str, InferenceData]) -> Results:
    """Diagnostics, the model's tables and figures, and rank plots, once every posterior is
    checked against its fit's contract."""
    config = plan_.config
    survey = plan_.design.survey
    seed = config.sampler.seed
    idatas = {
        f.label: engines.survey_adjusted(f, idatas[f.label], survey, seed + i)
        for i, f in enumerate(plan_.fits)
    }
    for fit in plan_.fits:
        check_posterior(idatas[fit.label], fit)
    checks = pd.concat(
        [
            diagnostics.check(idatas[f.label], f.diagnosed, config.summaries.targets, f.label)
            for f in plan_.fits
        ],
        ignore_index=True,
    )
    fitted = Fitted(plan_.fits, idatas, plan_.design, config.summaries, config.sampler.seed)
    summary = registry.definition(config.model).summarise(fitted, config.model)
    coefficients = [
        covariate_coefficients(
            idatas[f.label], config.summaries.ci_prob, f.label, plan_.design.covariate_scaling
        )
        for f in plan_.fits
    ]
    coefficients = [table for table in coefficients if len(table)]
    if coefficients:  # covariates.csv: every fit's covariate coefficients
        summary.tables["covariates"] = pd.concat(coefficients, ignore_index=True)
    results = Results(
        plan_, idatas, checks, summary.tables, summary.figures, headline=summary.headline
    )
    if config.summaries.loo and survey is None:
        _add_loo(results, plan_.fits, idatas, plan_.design.ids)
    for fit in plan_.fits:
        names = [n for n in fit.diagnosed if n not in ("gamma", "beta", "delta")]
        results.figures[f"rank_{fit.label}"] = rank_plot(idatas[fit.label], names)
    return results


def _add_loo(
    results: Results, fits: list[Fit], idatas: dict[str, InferenceData], ids: np.ndarray
) -> None:
    """loo.csv (per fit) and loo_pointwise.csv (per person, for comparing models); a failure
    is a note in the report, never a failure of the run's summaries."""
    try:
        found = [loo.pointwise(f, idatas[f.label], ids) for f in fits]
    except Exception as exc:  # noqa: BLE001 - the posterior and the other summaries stand
        results.notes["PSIS-LOO"] = f"not computed ({type(exc).__name__}: {exc})"
        return
    points = [table for table in found if table is not None]
    if points:
        results.files["loo_pointwise"] = pd.concat(points, ignore_index=True)
        results.tables["loo"] = loo.summary(results.files["loo_pointwise"])


def extend(plan_: Plan, previous: InferenceData) -> dict[str, InferenceData]:
    """Continue a saved run by sampler.draws more draws per chain, once the model, priors,
    data, knots and seed are checked to be the saved run's (only the draws differ). A
    design-adjusted run continues from its pseudo-posterior, and the whole is adjusted anew
    when summarised."""
    fit = plan_.fits[0]
    continue_chains = engines.extender(fit)
    differences = extension_differences(plan_, previous)
    if differences:
        raise ConfigError(f"--extend: the saved run differs in: {', '.join(differences)}")
    idata = continue_chains(fit, survey_adjust.unadjusted(previous), plan_.config.sampler)
    store_data(plan_, fit, idata)
    return {fit.label: _adjusted(plan_, fit, idata, 0)}


def fit_design(
    design: Design,
    spec: ModelSpec,
    sampler: SamplerSpec,
    priors: Mapping[str, Any] | None = None,
    adjust: bool = True,
) -> tuple[list[Fit], dict[str, InferenceData]]:
    """Declare and sample a model on a ready design, without a config (tests, calibration,
    benchmarks); `priors` replace the model's defaults by name. A survey design's
    pseudo-posterior is design-adjusted unless `adjust` is false (comparing two samplers of
    the same pseudo-posterior)."""
    defaults = registry.default_priors(spec, design.family)
    resolved = prior_lib.resolve(defaults, priors or {}, spec.name)
    fits = registry.definition(spec).fits(design, spec, resolved, sampler.seed)
    survey = design.survey if adjust else None
    return fits, {
        fit.label: engines.survey_adjusted(
            fit, engines.sample(fit, sampler, i), survey, sampler.seed + i
        )
        for i, fit in enumerate(fits)
    }


def sample_fits(plan_: Plan) -> dict[str, InferenceData]:
    """Sample every declared model (seed + i for the i-th); each idata also stores the data
    its summaries read (store_data)."""
    idatas = {}
    for i, fit in enumerate(plan_.fits):
        idatas[fit.label] = engines.sample(fit, plan_.config.sampler, i)
        store_data(plan_, fit, idatas[fit.label])
        idatas[fit.label] = _adjusted(plan_, fit, idatas[fit.label], i)
    return idatas


def _adjusted(plan_: Plan, fit: Fit, idata: InferenceData, i: int) -> InferenceData:
    """The i-th fit's posterior adjusted to the survey design, to be saved that way; as
    sampled if the adjustment fails, which must not lose the draws (summarise retries it
    and reports why)."""
    try:
        return engines.survey_adjusted(
            fit, idata, plan_.design.survey, plan_.config.sampler.seed + i
        )
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        return idata


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
}
# a survey design's arrays (SurveyWeights fields), stored as survey_<field>
SURVEY_ARRAYS = {
    "weights": ("obs",),
    "stratum": ("obs",),
    "psu": ("obs",),
    "psu_stratum": ("psu",),
}
DESIGN_ATTR = "bayesmetal_design"


def store_data(plan_: Plan, fit: Fit, idata: InferenceData) -> None:
    """Put the design into a fit's idata (y in observed_data; X, z, the other arrays and the
    fit's own constant data, such as BKMR's knots, in constant_data; names and scalars in
    attrs), so that summaries and --extend's checks need the run folder alone."""
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
    if design.survey is not None:
        for name, dims in SURVEY_ARRAYS.items():
            arrays[f"survey_{name}"] = (dims, getattr(design.survey, name))
        coords["psu"] = list(range(len(design.survey.psu_stratum)))
    for name, (dims, values) in fit.constant_data.items():
        arrays[name] = (dims, values)
        for dim, size in zip(dims, values.shape, strict=True):
            coords.setdefault(dim, list(range(size)))
    attach_data(idata, "observed_data", {"y": arrays.pop("y")}, coords)
    attach_data(idata, "constant_data", arrays, coords)
    scalars = [f.name for f in fields(Design) if f.name not in DESIGN_ARRAYS]
    stored = {name: getattr(design, name) for name in scalars if name != "survey"}
    survey = design.survey
    stored["survey"] = (
        None if survey is None else {"label": survey.label, "intervals": survey.intervals}
    )
    idata.attrs[DESIGN_ATTR] = json.dumps(stored)


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
    stored = scalars.pop("survey", None)
    survey = None
    if stored is not None:  # runs before the interval choice stored the label alone
        stored = {"label": stored, "intervals": "normal"} if isinstance(stored, str) else stored
        parts = {name: arrays[f"survey_{name}"] for name in SURVEY_ARRAYS}
        survey = SurveyWeights(**parts, **stored)
    return Design(**scalars, **{name: arrays.get(name) for name in DESIGN_ARRAYS}, survey=survey)


def plan_from_run(idatas: dict[str, InferenceData]) -> Plan:
    """The Plan of a saved run from its idata alone (config, priors, design): summaries are
    recomputed without the data files."""
    first = next(iter(idatas.values()))
    saved = saved_run(first)
    config = parse_config(saved.config, saved.config.get("source") or "saved run")
    design = design_from_idata(first)
    return Plan(config, None, design, *declare(config, design, saved.priors))


# config keys that decide the posterior --extend continues; the sampler's other settings,
# summaries, output and where the data file lies may change
EXTEND_COMPARED = ("cohort", "table", "analysis", "model", "sampler.seed")
EXTEND_FREE = ("table.path", "model.summaries")


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
    priors = json.loads(json.dumps(prior_lib.as_mappings(plan_.priors)))
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
    saved_data = stored_data(previous, "constant_data")
    for name, (_, values) in plan_.fits[0].constant_data.items():
        if not _same_array(saved_data.get(name), values):
            found.append(name)
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
