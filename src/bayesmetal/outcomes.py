"""Outcomes (METHODS section 4): BMD, T-scores, osteoporosis thresholds, self-report."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmetal.cohort_schema import (
    BmdOutcome,
    BoneStatusOutcome,
    SelfReportOutcome,
    ThresholdOutcome,
    TScoreOutcome,
)
from bayesmetal.errors import DataError

FAMILY = {
    "bmd": "gaussian",
    "tscore": "gaussian",
    "threshold": "bernoulli",
    "self_report": "bernoulli",
    "bone_status": "categorical",
}
SEX_CODES = {"male": 1.0, "female": 2.0}
# T-scores are computed in floating point: a BMD exactly at a cut-off must not miss it by 1e-16.
TOLERANCE = 1e-9


def _column(raw: pd.DataFrame, variable: str) -> pd.Series:
    if variable not in raw.columns:
        raise DataError(f"outcome needs column {variable}, which was not read")
    return pd.to_numeric(raw[variable], errors="coerce").astype("float64")


def bmd(raw: pd.DataFrame, spec: BmdOutcome) -> pd.Series:
    """Bone mineral density (g/cm2) at a DXA site, as measured."""
    return _column(raw, spec.variable)


def tscore(raw: pd.DataFrame, spec: TScoreOutcome) -> pd.Series:
    """T-score = (BMD - reference mean) / reference SD, references from configuration."""
    density = _column(raw, spec.variable)
    if spec.reference is not None:
        return (density - spec.reference.mean) / spec.reference.sd
    sex = _column(raw, spec.sex_variable)
    result = pd.Series(np.nan, index=raw.index)
    for name, ref in spec.by_sex.items():  # type: ignore[union-attr]
        rows = sex == SEX_CODES[name]
        result[rows] = (density[rows] - ref.mean) / ref.sd
    return result


def threshold(done: pd.DataFrame, spec: ThresholdOutcome) -> pd.Series:
    """1 if any (rule=any) or all (rule=all) available sites are at or below the cut-off.

    With rule=any a person counts as 0 when every available site is above it; a person
    with no site measured is missing.
    """
    sites = done[spec.of]
    below = sites.le(spec.at_or_below + TOLERANCE)
    available = sites.notna()
    if spec.rule == "any":
        hit = below.any(axis=1)
    else:
        hit = below.where(available, True).all(axis=1)
    return hit.astype("float64").where(available.any(axis=1))


def bone_status(done: pd.DataFrame, spec: BoneStatusOutcome) -> pd.Series:
    """normal / osteopenia / osteoporosis from the lowest available T-score."""
    lowest = done[spec.of].min(axis=1, skipna=True)
    status = pd.Series(np.nan, index=done.index, dtype="object")
    porotic = lowest <= spec.osteoporosis_at_or_below + TOLERANCE
    normal = lowest >= spec.osteopenia_below - TOLERANCE
    status[normal] = "normal"
    status[~normal & ~porotic & lowest.notna()] = "osteopenia"
    status[porotic] = "osteoporosis"
    return pd.Series(
        pd.Categorical(status, categories=["normal", "osteopenia", "osteoporosis"]),
        index=done.index,
    )


def self_report(raw: pd.DataFrame, spec: SelfReportOutcome) -> pd.Series:
    """1 for a 'yes' answer, 0 for 'no'; refused / don't know stay missing."""
    answer = _column(raw, spec.variable)
    result = pd.Series(np.nan, index=raw.index)
    result[answer.isin(spec.yes_codes)] = 1.0
    result[answer.isin(spec.no_codes)] = 0.0
    return result


def compute_outcomes(raw: pd.DataFrame, specs: dict[str, object]) -> pd.DataFrame:
    """All configured outcomes, in order, so thresholds can use earlier T-scores."""
    done = pd.DataFrame(index=raw.index)
    for name, spec in specs.items():
        kind = spec.type  # type: ignore[attr-defined]
        if kind in ("threshold", "bone_status"):
            done[name] = threshold(done, spec) if kind == "threshold" else bone_status(done, spec)
        else:
            done[name] = {"bmd": bmd, "tscore": tscore, "self_report": self_report}[kind](raw, spec)
    return done


def source_variables(spec: object) -> list[str]:
    """The raw NHANES variables an outcome reads (derived ones read none)."""
    variables = [getattr(spec, "variable", None)]
    if isinstance(spec, TScoreOutcome) and spec.by_sex is not None:
        variables.append(spec.sex_variable)
    return [v for v in variables if v]
