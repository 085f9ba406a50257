"""Exposure preprocessing: detection frequency, log, standardisation, quantile scores."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bayesmetal.errors import DataError

UNIT_IN_LABEL = re.compile(r"\(([^()]+)\)\s*$")


def unit_from_label(label: str) -> str:
    """The unit NHANES puts in parentheses at the end of a label: 'Blood lead (ug/dL)'."""
    match = UNIT_IN_LABEL.search(label or "")
    return match.group(1).strip() if match else ""


def detection_frequency(below_lod: pd.Series) -> float:
    """Share of measurements at or above the limit of detection (comment code 0)."""
    known = below_lod.dropna()
    if known.empty:
        return float("nan")
    return float((known == 0).mean())


def log_transform(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Natural log of concentrations (positive: `validate.analysis_table` checked them)."""
    return np.log(frame[columns])


def standardise(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Centre and scale each column; returns the scaled table, its means and SDs."""
    centre = frame.mean()
    scale = frame.std(ddof=1)
    return (frame - centre) / scale, centre, scale


def quantile_edges(values: pd.Series, q: int) -> np.ndarray:
    """Inner cut points at the 1/q .. (q-1)/q sample quantiles, as R's qgcomp `quantize` and
    gWQS `gwqs_rank` take them: the unique breaks from the minimum to the maximum (type 7
    quantiles, numpy's default), less the two ends. A cut point equal to the minimum (more than
    1/q of values at LOD/sqrt(2)) therefore goes, and the LOD block shares score 0 with the
    rest of its quantile group, as in R."""
    probs = np.arange(q + 1) / q
    return np.unique(np.quantile(values.to_numpy(dtype=float), probs))[1:-1]


def quantile_scores(values: pd.Series, q: int = 4) -> tuple[pd.Series, np.ndarray]:
    """Scores 0..q-1 by intervals (a, b] between sample quantiles, as qgcomp and gWQS score
    them (R's `cut(x, breaks, include.lowest = TRUE) - 1`).

    Ties at a cut point (many values at LOD/sqrt(2)) collapse it, so a heavily censored
    exposure can have fewer than q distinct scores; the returned edges show that.
    """
    if q < 2:
        raise DataError(f"quantiles must be at least 2, got {q}")
    edges = quantile_edges(values, q)
    scores = np.searchsorted(edges, values.to_numpy(dtype=float), side="left")
    return pd.Series(scores, index=values.index, name=values.name), edges
