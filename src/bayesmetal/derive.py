"""Derived covariates (METHODS section 3): each `derive:` kind of the config is one function."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from bayesmetal.cohort_schema import CutCov, MetMinutesCov, NumericCov, RecodeCov, SmokingCov
from bayesmetal.errors import DataError


def _clean(raw: pd.DataFrame, variable: str, missing_codes: list[float]) -> pd.Series:
    if variable not in raw.columns:
        raise DataError(f"derived covariate needs column {variable}, which was not read")
    values = pd.to_numeric(raw[variable], errors="coerce").astype("float64")
    return values.mask(values.isin(missing_codes))


def cut(
    values: pd.Series, breaks: list[float], labels: list[str], closed: str | list[str]
) -> pd.Series:
    """Categorise a number at breaks. Per break, 'left' sends a value equal to the break up
    (intervals [a, b)), 'right' keeps it in the lower category ((a, b])."""
    sides = closed if isinstance(closed, list) else [closed] * len(breaks)
    x = values.to_numpy(dtype=float)
    index = np.zeros(len(x), dtype=int)
    for brk, side in zip(breaks, sides, strict=True):
        index += (x >= brk) if side == "left" else (x > brk)
    codes = np.where(np.isnan(x), -1, index)
    categorical = pd.Categorical.from_codes(codes, categories=labels)
    return pd.Series(categorical, index=values.index)


def derive_numeric(raw: pd.DataFrame, spec: NumericCov) -> pd.Series:
    """A numeric variable with its 'refused'/'don't know' codes set missing."""
    return _clean(raw, spec.variable, spec.missing_codes)


def derive_recode(raw: pd.DataFrame, spec: RecodeCov) -> pd.Series:
    """Map codes to labels; codes not listed (refused, don't know) become missing."""
    codes = _clean(raw, spec.variable, [])
    labels = codes.map({float(k): v for k, v in spec.levels.items()})
    order = list(dict.fromkeys(spec.levels.values()))
    return pd.Categorical(labels, categories=order, ordered=False)


def derive_cut(raw: pd.DataFrame, spec: CutCov) -> pd.Series:
    """BMI, PIR, cotinine, age groups: a number cut at configured breaks."""
    return cut(
        _clean(raw, spec.variable, spec.missing_codes), spec.breaks, spec.labels, spec.closed
    )


def met_minutes(raw: pd.DataFrame, spec: MetMinutesCov) -> pd.Series:
    """Weekly MET-minutes = sum over domains of MET x days x minutes (NaN if any unknown)."""
    total = pd.Series(0.0, index=raw.index)
    for domain in ("vigorous", "moderate", "walking"):
        for part in getattr(spec, domain):
            days = _clean(raw, part.days, spec.missing_codes)
            minutes = _clean(raw, part.minutes, spec.missing_codes)
            weekly = days * minutes
            if part.asked is not None:
                asked = _clean(raw, part.asked, [7, 9])
                weekly = weekly.mask(asked == 2, 0.0).mask(asked.isna(), np.nan)
            total = total + spec.met[domain] * weekly
    return total


def derive_met_minutes(raw: pd.DataFrame, spec: MetMinutesCov) -> pd.Series:
    """Physical-activity level from weekly MET-minutes."""
    return cut(met_minutes(raw, spec), spec.breaks, spec.labels, spec.closed)


def derive_smoking(raw: pd.DataFrame, spec: SmokingCov) -> pd.Series:
    """never (not 100 cigarettes), former (100+, not now), current (100+, every/some days)."""
    ever = _clean(raw, spec.ever, [7, 9])
    now = _clean(raw, spec.now, [7, 9])
    status = pd.Series(np.nan, index=raw.index, dtype="object")
    status[ever == 2] = "never"
    status[(ever == 1) & (now == 3)] = "former"
    status[(ever == 1) & now.isin([1, 2])] = "current"
    return pd.Categorical(status, categories=["never", "former", "current"])


DERIVATIONS: dict[str, Callable[[pd.DataFrame, object], pd.Series]] = {
    "numeric": derive_numeric,
    "recode": derive_recode,
    "cut": derive_cut,
    "met_minutes": derive_met_minutes,
    "smoking_status": derive_smoking,
}


def source_variables(spec: object) -> list[str]:
    """The raw NHANES variables a derived covariate reads."""
    if isinstance(spec, MetMinutesCov):
        parts = [*spec.vigorous, *spec.moderate, *spec.walking]
        return [v for p in parts for v in (p.asked, p.days, p.minutes) if v is not None]
    if isinstance(spec, SmokingCov):
        return [spec.ever, spec.now]
    return [spec.variable]  # type: ignore[attr-defined]


def derive(raw: pd.DataFrame, spec: object) -> pd.Series:
    """Compute one derived covariate as a Series aligned with `raw`."""
    result = DERIVATIONS[spec.derive](raw, spec)  # type: ignore[attr-defined]
    return pd.Series(result, index=raw.index)
