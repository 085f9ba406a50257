"""The one validation layer between an analysis table and a model: named errors, never guesses.

Two entry points. `numeric_columns` runs where a user's file is read and refuses text in a
column that must hold numbers (naming the rows and values), so nothing is silently dropped or
recoded. `analysis_table` runs inside `design.make_design`, the single road from any analysis
table (NHANES cohort or user file) to a model, and refuses data no model should see: infinite
values, non-positive concentrations before the log, exposures or an outcome with no variation,
a binary outcome that is not 0/1 or lacks cases, a count outcome that is not a non-negative
integer, duplicated ids, too few rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmetal.errors import DataError

# Residual rows a model needs beyond its coefficients; a smaller table is refused.
MIN_SPARE_ROWS = 10
# An exposure whose log concentration varies less than this (SD) carries no information:
# Mn = 10.0 for everyone gives an SD of 4e-16 after floating-point logs, not 0.
LOG_SD_TOLERANCE = 1e-6
# An outcome or numeric covariate whose SD is below this share of its largest |value|.
RELATIVE_SD_TOLERANCE = 1e-9
SHOWN = 5  # offending rows quoted in a message
SAMPLE_ROWS = "of the analysis sample, after the flow table's exclusions"
# Families whose outcome must be a non-negative integer count (their likelihoods: families.py).
COUNT_FAMILIES = ("poisson", "negative_binomial")


def _rows(index: pd.Index, first_line: int) -> str:
    shown = ", ".join(str(int(i) + first_line) for i in index[:SHOWN])
    return shown + (f" and {len(index) - SHOWN} more" if len(index) > SHOWN else "")


def _values(values: pd.Series) -> str:
    distinct = list(dict.fromkeys(values.astype(str)))
    shown = ", ".join(repr(v) for v in distinct[:SHOWN])
    return shown + (", ..." if len(distinct) > SHOWN else "")


def text_cells(values: pd.Series) -> pd.Series:
    """The non-missing cells of a column that are not numbers (e.g. '<LOD', 'twelve')."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.iloc[0:0]
    present = values.dropna().astype(object)  # a parquet dictionary column arrives categorical
    parsed = pd.to_numeric(present, errors="coerce")
    return present[parsed.isna()]


def numeric_columns(
    frame: pd.DataFrame,
    required: list[str],
    maybe_text: list[str],
    source: str,
    first_line: int,
    unit: str = "line",
) -> pd.DataFrame:
    """Columns in `required` as finite numbers (or missing); `maybe_text` columns either all
    text or all numbers.

    `first_line` is the file line of row 0 (2 for a CSV with a header), so messages point at
    lines a user can open. A column mixing numbers and text in `maybe_text` is refused rather
    than read as a categorical with one level per distinct number.
    """
    frame = frame.copy()
    for column in dict.fromkeys(required):
        bad = text_cells(frame[column])
        if len(bad):
            raise DataError(
                f"{source}: column {column!r} must be numeric but {len(bad)} cell(s) hold text "
                f"({_values(bad)}) at {unit}(s) {_rows(bad.index, first_line)}; replace them with "
                "numbers or leave them empty (missing)"
            )
        frame[column] = pd.to_numeric(frame[column].astype(object))
        infinite = frame.index[np.isinf(frame[column].to_numpy(dtype=float))]
        if len(infinite):
            raise DataError(
                f"{source}: column {column!r} has {len(infinite)} infinite value(s) at "
                f"{unit}(s) {_rows(infinite, first_line)}"
            )
    for column in dict.fromkeys(maybe_text):
        bad = text_cells(frame[column])
        numbers = frame[column].notna().sum() - len(bad)
        if len(bad) and numbers:
            raise DataError(
                f"{source}: column {column!r} mixes numbers and text ({_values(bad)} at "
                f"{unit}(s) {_rows(bad.index, first_line)}); fix the cells, or list the column "
                "under table.categorical if its values are categories"
            )
        if numbers and frame[column].dtype == object:
            frame[column] = pd.to_numeric(frame[column])
    return frame


def _finite(values: pd.Series, column: str, role: str, source: str) -> np.ndarray:
    numbers = values.to_numpy(dtype=float)
    infinite = np.isinf(numbers)
    if infinite.any():
        raise DataError(
            f"{source}: {role} {column!r} has {int(infinite.sum())} infinite value(s) "
            f"(row(s) {_rows(values.index[infinite], 1)} {SAMPLE_ROWS})"
        )
    return numbers


def _check_exposure(values: pd.Series, column: str, source: str) -> None:
    numbers = _finite(values, column, "exposure", source)
    bad = ~(numbers > 0)
    if bad.any():
        raise DataError(
            f"{source}: exposure {column!r} has {int(bad.sum())} value(s) missing or <= 0 "
            f"(e.g. {numbers[bad][0]:g} in row(s) {_rows(values.index[bad], 1)} {SAMPLE_ROWS}); "
            "a log transform "
            "needs positive concentrations (substitute LOD/sqrt(2) for non-detects)"
        )
    spread = float(np.std(np.log(numbers), ddof=1)) if len(numbers) > 1 else 0.0
    if not spread > LOG_SD_TOLERANCE:
        raise DataError(
            f"{source}: exposure {column!r} is constant or nearly so in the analysis sample "
            f"(SD of log concentration {spread:.2g} <= {LOG_SD_TOLERANCE:g}): its effect could "
            "only come from the prior; drop it from the exposures"
        )


def _varies(numbers: np.ndarray) -> bool:
    scale = float(np.max(np.abs(numbers))) if len(numbers) else 0.0
    return len(numbers) > 1 and float(np.std(numbers)) > RELATIVE_SD_TOLERANCE * scale


def _check_outcome(values: pd.Series, column: str, family: str, source: str) -> None:
    numbers = _finite(values, column, "outcome", source)
    missing = np.isnan(numbers)
    if missing.any():
        raise DataError(f"{source}: outcome {column!r} has {int(missing.sum())} missing values")
    if family == "bernoulli":
        bad = ~np.isin(numbers, [0.0, 1.0])
        if bad.any():
            raise DataError(
                f"{source}: outcome {column!r} must be 0/1 for a bernoulli model; found "
                f"{_values(values[bad])} in row(s) {_rows(values.index[bad], 1)} {SAMPLE_ROWS}"
            )
        cases = int(numbers.sum())
        if cases in (0, len(numbers)):
            raise DataError(
                f"{source}: outcome {column!r} has {cases} case(s) and "
                f"{len(numbers) - cases} non-case(s): a bernoulli model needs both"
            )
        return
    if family in COUNT_FAMILIES:
        bad = ~((numbers >= 0) & (numbers == np.floor(numbers)))
        if bad.any():
            raise DataError(
                f"{source}: outcome {column!r} must be a non-negative integer count for a "
                f"{family} model; found {_values(values[bad])} in row(s) "
                f"{_rows(values.index[bad], 1)} {SAMPLE_ROWS}"
            )
    if not _varies(numbers):
        raise DataError(f"{source}: outcome {column!r} is constant: nothing to model")


def _check_ids(values: pd.Series, column: str, source: str) -> None:
    missing = values.isna()
    if missing.any():
        raise DataError(f"{source}: id column {column!r} has {int(missing.sum())} missing value(s)")
    repeated = values[values.duplicated(keep=False)]
    if len(repeated):
        raise DataError(
            f"{source}: id column {column!r} has duplicated values ({_values(repeated)}); "
            "expected one row per person"
        )


def analysis_table(
    frame: pd.DataFrame,
    outcome: str,
    family: str,
    exposures: list[str],
    id_column: str | None,
    source: str,
) -> None:
    """Refuse an analysis table no model should be fitted to (see the module docstring)."""
    _check_outcome(frame[outcome], outcome, family, source)
    for column in exposures:
        _check_exposure(frame[column], column, source)
    if id_column is not None and id_column in frame.columns:
        _check_ids(frame[id_column], id_column, source)


def numeric_covariate(values: pd.Series, column: str, source: str) -> np.ndarray:
    """A numeric covariate as floats: finite and not constant."""
    numbers = _finite(values, column, "covariate", source)
    if not _varies(numbers):
        raise DataError(f"{source}: covariate {column!r} is constant in the analysis sample")
    return numbers


def enough_rows(n: int, coefficients: int, source: str) -> None:
    """At least MIN_SPARE_ROWS rows more than the model has regression coefficients."""
    needed = coefficients + MIN_SPARE_ROWS
    if n < needed:
        raise DataError(
            f"{source}: {n} row(s) in the analysis sample; this model has {coefficients} "
            f"regression coefficients and needs at least {needed} rows "
            f"(coefficients + {MIN_SPARE_ROWS})"
        )
