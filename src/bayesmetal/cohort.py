"""Build the analysis table from raw NHANES data: inclusion, covariates, outcomes, flow."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayesmetal import derive, nhanes, outcomes
from bayesmetal.cohort_schema import CohortSpec, IncludeRule, SurveySpec
from bayesmetal.errors import DataError
from bayesmetal.exposures import unit_from_label
from bayesmetal.survey_design import SurveyFrame, survey_frame

# Survey design variables (masked variance units) carried into every analysis table.
SURVEY_DESIGN = ("SDMVPSU", "SDMVSTRA")


@dataclass(frozen=True)
class ExposureInfo:
    """What a table needs to describe an exposure: variable, label and unit from the file."""

    name: str
    variable: str
    label: str
    unit: str


@dataclass(frozen=True)
class AnalysisTable:
    """One row per person in the analysis sample, and the flow table that led to it.

    Columns: SEQN, cycle, each exposure by name (raw concentration), `<name>_below_lod`,
    each covariate, each outcome, `weight` (survey weight of the cycle), `weight_pooled`
    (weight x share of pooled survey years) and the design variables SDMVPSU, SDMVSTRA.
    """

    frame: pd.DataFrame
    flow: pd.DataFrame
    exposures: tuple[ExposureInfo, ...]
    covariates: tuple[str, ...]
    outcomes: dict[str, str]  # name -> family
    weights: dict[str, str]  # cycle -> weight variable used
    sources: dict[str, str]
    units: dict[str, str] = field(default_factory=dict)  # exposure or outcome -> unit
    survey: SurveyFrame | None = None  # the full design, when a survey design was asked for

    @property
    def exposure_names(self) -> list[str]:
        return [e.name for e in self.exposures]


def required_variables(spec: CohortSpec) -> list[str]:
    """Every raw variable the cohort reads, in a stable order."""
    names: list[str] = [rule.variable for rule in spec.include]
    for exposure in spec.exposures:
        names += [exposure.variable] + ([exposure.lod_flag] if exposure.lod_flag else [])
    for cov in spec.covariates.values():
        names += derive.source_variables(cov)
    for out in spec.outcomes.values():
        names += outcomes.source_variables(out)
    return list(dict.fromkeys(names))


def read_raw(spec: CohortSpec, data_dir: Path, survey: SurveySpec | None = None) -> nhanes.RawTable:
    """Read exactly the files and variables the cohort (and its survey design) needs."""
    design = [] if survey is None else [survey.strata, survey.psu]
    if survey is not None and survey.weight != "auto":
        design.append(survey.weight)
    return nhanes.read_cycles(
        data_dir,
        spec.cycles,
        spec.components,
        required_variables(spec),
        optional=tuple(dict.fromkeys([*spec.weight.candidates, *SURVEY_DESIGN, *design])),
    )


def _rule_mask(raw: pd.DataFrame, rule: IncludeRule) -> pd.Series:
    values = pd.to_numeric(raw[rule.variable], errors="coerce")
    if rule.between is not None:
        return values.between(*rule.between)
    return values.isin(rule.isin)


class Flow:
    """Accumulates the flow table: n before and after each step and why people left."""

    def __init__(self, n: int, start: str) -> None:
        self.rows = [dict(step=start, n_before=n, excluded=0, n_after=n, note="")]

    def step(self, keep: pd.Series, current: pd.Series, reason: str, note: str = "") -> pd.Series:
        before = int(current.sum())
        after_mask = current & keep
        after = int(after_mask.sum())
        self.rows.append(
            dict(step=reason, n_before=before, excluded=before - after, n_after=after, note=note)
        )
        return after_mask

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def choose_weights(raw: pd.DataFrame, candidates: list[str]) -> tuple[pd.Series, dict[str, str]]:
    """Per cycle, the first candidate weight that the cycle's files contain."""
    weight = pd.Series(float("nan"), index=raw.index)
    chosen: dict[str, str] = {}
    for cycle, rows in raw.groupby("cycle").groups.items():
        present = [c for c in candidates if c in raw.columns and raw.loc[rows, c].notna().any()]
        if not present:
            raise DataError(
                f"cycle {cycle}: none of the weight candidates {candidates} is in its files"
            )
        chosen[str(cycle)] = present[0]
        weight[rows] = raw.loc[rows, present[0]]
    return weight, chosen


def build(
    raw_table: nhanes.RawTable, spec: CohortSpec, survey: SurveySpec | None = None
) -> AnalysisTable:
    """Apply the cohort: inclusion rules, then complete exposures, outcomes and covariates;
    with a `survey` design, also the full design with the analysis sample as its domain.

    Every person who leaves does so at exactly one counted step of the flow table.
    """
    raw = raw_table.frame
    covariates = {name: derive.derive(raw, cov) for name, cov in spec.covariates.items()}
    outcome_table = outcomes.compute_outcomes(raw, spec.outcomes)
    flow = Flow(len(raw), f"persons in DEMO, cycles {', '.join(spec.cycles)}")
    keep = pd.Series(True, index=raw.index)
    for rule in spec.include:
        keep = flow.step(_rule_mask(raw, rule), keep, rule.name)
    for exposure in spec.exposures:
        reason = f"no {exposure.name} result (outside its lab subsample, or not measured)"
        keep = flow.step(raw[exposure.variable].notna(), keep, reason)
    for name, out in spec.outcomes.items():
        if out.required:
            keep = flow.step(outcome_table[name].notna(), keep, f"missing outcome {name}")
    for name, cov in spec.covariates.items():
        values = covariates[name]
        if cov.missing_level is not None:
            n_missing = int((values.isna() & keep).sum())
            if n_missing:
                values = values.cat.add_categories(cov.missing_level).fillna(cov.missing_level)
                covariates[name] = values
            flow.step(
                pd.Series(True, index=raw.index),
                keep,
                f"missing {name} kept as level {cov.missing_level!r}",
                note=f"{n_missing} recoded, none excluded",
            )
        elif cov.required:
            keep = flow.step(values.notna(), keep, f"missing covariate {name}")
    weight, chosen = choose_weights(raw, spec.weight.candidates)
    if int(keep.sum()) == 0:
        raise DataError(
            f"cohort {spec.name!r} is empty after the flow steps:\n{flow.table().to_string()}"
        )
    frame = raw.loc[keep, ["SEQN", "cycle"]].copy()
    info = []
    for exposure in spec.exposures:
        frame[exposure.name] = raw.loc[keep, exposure.variable].astype("float64")
        if exposure.lod_flag:
            frame[f"{exposure.name}_below_lod"] = raw.loc[keep, exposure.lod_flag]
        label = raw_table.labels.get(exposure.variable, "")
        info.append(ExposureInfo(exposure.name, exposure.variable, label, unit_from_label(label)))
    for name in spec.covariates:
        frame[name] = covariates[name][keep]
    for name in spec.outcomes:
        frame[name] = outcome_table.loc[keep, name]
    frame["weight"] = weight[keep]
    frame["weight_pooled"] = weight[keep] * raw.loc[keep, "pool_factor"]
    for column in SURVEY_DESIGN:
        if column in raw.columns:
            frame[column] = raw.loc[keep, column]
    return AnalysisTable(
        frame=frame.reset_index(drop=True),
        flow=flow.table(),
        exposures=tuple(info),
        covariates=tuple(spec.covariates),
        outcomes={name: outcomes.FAMILY[out.type] for name, out in spec.outcomes.items()},
        weights=chosen,
        sources=raw_table.sources,
        units={e.name: e.unit for e in info} | outcome_units(spec, raw_table.labels),
        survey=None if survey is None else design_of(raw, keep, weight, chosen, survey),
    )


def design_of(
    raw: pd.DataFrame,
    keep: pd.Series,
    chosen_weight: pd.Series,
    chosen: dict[str, str],
    survey: SurveySpec,
) -> SurveyFrame:
    """The survey design over every person of the cycles, the kept ones as its domain;
    weights pooled across cycles as `weight_pooled` is."""
    if survey.weight == "auto":
        weight, name = chosen_weight, "/".join(dict.fromkeys(chosen.values()))
    else:
        if survey.weight not in raw.columns:
            raise DataError(f"survey.weight {survey.weight!r} is not in the cohort's files")
        weight, name = pd.to_numeric(raw[survey.weight], errors="coerce"), survey.weight
    pooled = weight * raw["pool_factor"]
    return survey_frame(raw, keep, pooled, name, survey.strata, survey.psu, survey.nest)


def outcome_units(spec: CohortSpec, labels: dict[str, str]) -> dict[str, str]:
    """Each continuous outcome's unit: a BMD's from its file label ('g/cm^2' written
    g/cm²), 'SD' for a T-score; binary outcomes have none."""
    units = {}
    for name, out in spec.outcomes.items():
        if out.type == "bmd":
            units[name] = unit_from_label(labels.get(out.variable, "")).replace("^2", "²")
        elif out.type == "tscore":
            units[name] = "SD"
    return {name: unit for name, unit in units.items() if unit}


def load_cohort(
    spec: CohortSpec, data_dir: Path, survey: SurveySpec | None = None
) -> AnalysisTable:
    """Read the files a cohort needs and build its analysis table (and survey design)."""
    return build(read_raw(spec, data_dir, survey), spec, survey)
