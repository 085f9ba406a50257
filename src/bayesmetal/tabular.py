"""A user's own cohort from a CSV or parquet file, turned into an analysis table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayesmetal import validate
from bayesmetal.cohort import AnalysisTable, ExposureInfo, Flow
from bayesmetal.cohort_schema import SurveySpec
from bayesmetal.errors import DataError
from bayesmetal.nhanes import sha256
from bayesmetal.run_schema import TableSource
from bayesmetal.survey_design import SurveyFrame, survey_frame

FALLBACK_ENCODING = "cp1252"  # Windows-1252, what Excel writes when it does not write UTF-8


# what a file starts with when it is not a text CSV, and what to say about it
SIGNATURES = {
    b"PK\x03\x04": "an Excel workbook or another zip file: save it as CSV (UTF-8)",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook: save it as CSV (UTF-8)",
    b"\xff\xfe": "UTF-16 text (Excel's 'Unicode text'): save it as CSV (UTF-8)",
    b"\xfe\xff": "UTF-16 text: save it as CSV (UTF-8)",
}
# columns the analysis table adds itself; a user column of that name would be overwritten
RESERVED = ("SEQN", "weight_pooled")


def _not_a_csv(path: Path) -> str | None:
    with open(path, "rb") as handle:
        head = handle.read(4)
    return next((what for sig, what in SIGNATURES.items() if head.startswith(sig)), None)


def _duplicated_header(path: Path, encoding: str) -> list[str]:
    header = pd.read_csv(path, encoding=encoding, header=None, nrows=1).iloc[0].astype(str)
    return sorted(set(header[header.duplicated()]))


def read_csv(path: Path, encoding: str | None) -> tuple[pd.DataFrame, str]:
    """A CSV in the given encoding, else UTF-8, else Windows-1252; returns the encoding used
    so the flow table can say when the file was not UTF-8. Duplicated column names are an
    error (pandas would rename the second 'e1' to 'e1.1' and use the first)."""
    what = _not_a_csv(path)
    if what:
        raise DataError(f"{path}: not a CSV file but {what}")
    tried = [encoding] if encoding else ["utf-8-sig", FALLBACK_ENCODING]
    for candidate in tried:
        try:
            frame = pd.read_csv(path, encoding=candidate)
            repeated = _duplicated_header(path, candidate)
            if repeated:
                raise DataError(f"{path}: column name(s) {', '.join(repeated)} appear twice")
            return frame, candidate
        except UnicodeDecodeError as exc:
            failure = exc
        except LookupError as exc:
            raise DataError(f"{path}: table.encoding {candidate!r} is not an encoding") from exc
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{path}: the file is empty (no header, no rows)") from exc
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: not a readable CSV: {exc}") from exc
    raise DataError(
        f"{path}: cannot decode as {' or '.join(tried)} ({failure}); save it as UTF-8 or set "
        "table.encoding"
    )


def read_table(path: Path, encoding: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read CSV or parquet by extension, with errors that name the file."""
    if not path.is_file():
        raise DataError(f"table file not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            raise DataError(f"{path}: not a readable parquet file: {exc}") from exc
        return frame.reset_index(drop=True), "parquet"
    if path.suffix.lower() in (".csv", ".txt"):
        return read_csv(path, encoding)
    raise DataError(f"{path}: table must be .csv or .parquet")


def load_table(spec: TableSource, survey: SurveySpec | None = None) -> AnalysisTable:
    """Rows with a missing value in any used column leave at a counted flow step; with a
    `survey` design, every row of the file is in the design and the kept ones its domain."""
    path = Path(spec.path)
    raw, encoding = read_table(path, spec.encoding)
    optional = [c for c in (spec.weight, spec.group, spec.id) if c]
    used = [spec.outcome, *spec.exposures, *spec.covariates, *optional]
    reserved = [c for c in used if c in RESERVED]
    if reserved:
        raise DataError(
            f"{path}: column(s) {', '.join(reserved)} have names bayesmetal uses itself "
            f"({', '.join(RESERVED)}); rename them in the file and the config"
        )
    missing = [c for c in used if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: no column(s) {', '.join(missing)} (has {list(raw.columns)})")
    if raw.empty:
        raise DataError(f"{path}: the file has a header but no rows")
    numeric = [spec.outcome, *spec.exposures, *([spec.weight] if spec.weight else [])]
    free = [c for c in spec.covariates if c not in spec.categorical]
    first = (2, "line") if encoding != "parquet" else (1, "row")  # CSV lines count the header
    raw = validate.numeric_columns(raw, numeric, free, str(path), *first)
    said = f" (read as {encoding}: not UTF-8)" if encoding == FALLBACK_ENCODING else ""
    flow = Flow(len(raw), f"rows in {path.name}{said}")
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
    ids = raw[spec.id] if spec.id else pd.Series(range(len(raw)), index=raw.index)
    frame["SEQN"] = ids[keep].to_numpy()
    frame["weight_pooled"] = frame[spec.weight] if spec.weight else 1.0
    return AnalysisTable(
        frame=frame,
        flow=flow.table(),
        exposures=tuple(ExposureInfo(c, c, c, spec.units.get(c, "")) for c in spec.exposures),
        covariates=tuple(spec.covariates),
        outcomes={spec.outcome: spec.family},
        weights={},
        sources={path.name: sha256(path)},
        units=dict(spec.units),
        survey=None if survey is None else _survey(raw.assign(SEQN=ids), keep, spec, survey),
    )


def _survey(
    raw: pd.DataFrame, keep: pd.Series, spec: TableSource, survey: SurveySpec
) -> SurveyFrame:
    """The table's design: its weight column (survey.weight, or table.weight for 'auto')."""
    weight = spec.weight if survey.weight == "auto" else survey.weight
    for key, column in (("weight", weight), ("strata", survey.strata), ("psu", survey.psu)):
        if column not in raw.columns:
            raise DataError(f"{spec.path}: survey.{key} column {column!r} is not in the file")
    values = pd.to_numeric(raw[weight], errors="coerce")
    return survey_frame(raw, keep, values, weight, survey.strata, survey.psu, survey.nest)
