"""A user's own cohort from a CSV or parquet file, turned into an analysis table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayesmetal.cohort import AnalysisTable, ExposureInfo, Flow
from bayesmetal.config import TableSource
from bayesmetal.errors import DataError
from bayesmetal.nhanes import sha256


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV or parquet by extension, with errors that name the file."""
    if not path.is_file():
        raise DataError(f"table file not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path)
    raise DataError(f"{path}: table must be .csv or .parquet")


def load_table(spec: TableSource) -> AnalysisTable:
    """Rows with a missing value in any used column leave at a counted flow step."""
    path = Path(spec.path)
    raw = read_table(path)
    optional = [c for c in (spec.weight, spec.group, spec.id) if c]
    used = [spec.outcome, *spec.exposures, *spec.covariates, *optional]
    missing = [c for c in used if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: no column(s) {', '.join(missing)} (has {list(raw.columns)})")
    flow = Flow(len(raw), f"rows in {path.name}")
    keep = pd.Series(True, index=raw.index)
    for column in dict.fromkeys(used):
        keep = flow.step(raw[column].notna(), keep, f"missing {column}")
    if int(keep.sum()) == 0:
        raise DataError(f"{path}: no complete rows left:\n{flow.table().to_string()}")
    frame = raw.loc[keep].reset_index(drop=True).copy()
    for column in [*spec.categorical, *([spec.group] if spec.group else [])]:
        frame[column] = pd.Categorical(frame[column].astype(str))
    for column in spec.covariates:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = pd.Categorical(frame[column])
    frame["SEQN"] = frame[spec.id] if spec.id else range(len(frame))
    frame["weight_pooled"] = frame[spec.weight] if spec.weight else 1.0
    return AnalysisTable(
        frame=frame,
        flow=flow.table(),
        exposures=tuple(ExposureInfo(c, c, c, "") for c in spec.exposures),
        covariates=tuple(spec.covariates),
        outcomes={spec.outcome: spec.family},
        weights={},
        sources={path.name: sha256(path)},
    )
