"""Descriptive tables: Table 1 (with tests), Table 2 (exposure distributions), correlations."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bayesmetal.cohort import AnalysisTable
from bayesmetal.exposures import detection_frequency

PERCENTILES = (5, 25, 50, 75, 95)
BINARY_LEVELS = {0: "no", 1: "yes"}  # a bernoulli outcome's 0 / 1


def format_p(p: float) -> str:
    """A p-value as a paper prints it: '< 0.001', else 3 decimals; '' where there is none."""
    if p is None or not np.isfinite(p):
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def decimals_for(spread: float, significant: int = 2) -> int:
    """Decimals that show `spread` (an SD, a median) with `significant` digits, 0 to 4."""
    if not np.isfinite(spread) or spread <= 0:
        return 1
    return int(min(4, max(0, significant - 1 - np.floor(np.log10(abs(spread))))))


def _mean_sd(values: pd.Series, decimals: int) -> str:
    return f"{values.mean():.{decimals}f} ({values.std(ddof=1):.{decimals}f})"


def level_label(table: AnalysisTable, variable: str, level: object) -> str:
    """A level as a reader names it: 'no' / 'yes' for a binary outcome's 0 / 1, '3' for 3.0,
    a category's own label."""
    if table.outcomes.get(variable) == "bernoulli" and level in BINARY_LEVELS:
        return BINARY_LEVELS[int(level)]  # type: ignore[call-overload]
    if isinstance(level, float) and level.is_integer():
        return str(int(level))
    return str(level)


def group_column(table: AnalysisTable, group_by: str, level: object) -> str:
    """The header of a group's column: 'osteoporosis = yes', 'age_group = child (8-11)'."""
    return f"{group_by} = {level_label(table, group_by, level)}"


def _continuous_test(groups: list[pd.Series]) -> tuple[float, str]:
    """Student's t-test for two groups (equal variances), one-way ANOVA for more."""
    groups = [g.dropna() for g in groups if g.notna().sum() > 1]
    if len(groups) < 2:
        return float("nan"), ""
    if len(groups) == 2:
        return float(stats.ttest_ind(*groups, equal_var=True).pvalue), "Student's t-test"
    return float(stats.f_oneway(*groups).pvalue), "one-way ANOVA"


def _categorical_test(values: pd.Series, groups: pd.Series) -> tuple[float, str]:
    """Pearson's chi-square on the level x group table (Yates-corrected for 2x2, as R does)."""
    counts = pd.crosstab(values, groups)
    counts = counts.loc[counts.sum(axis=1) > 0, counts.sum(axis=0) > 0]
    if counts.shape[0] < 2 or counts.shape[1] < 2:
        return float("nan"), ""
    return float(stats.chi2_contingency(counts.to_numpy()).pvalue), "chi-square"


def table1(
    table: AnalysisTable, group_by: str | None = None, formatted: bool = True
) -> pd.DataFrame:
    """Covariates and outcomes, overall and by group: mean (SD) or n (%), with p-values.

    Unweighted: it describes the analysis sample, as the published Table 1s do. Means and SDs
    carry the decimals that show the variable's SD with 2 significant digits, percentages 1
    decimal; levels and groups are named (`osteoporosis = yes`); p-values are text ('< 0.001',
    else 3 decimals), or the numbers with `formatted=False`.
    """
    frame = table.frame
    variables = [v for v in [*table.covariates, *table.outcomes] if v != group_by]
    group_levels: list = []
    if group_by is not None:
        group_col = frame[group_by]
        if group_col.dtype == "category":
            group_levels = [g for g in group_col.cat.categories if (group_col == g).any()]
        else:
            group_levels = sorted(group_col.dropna().unique())
    columns = {g: group_column(table, group_by, g) for g in group_levels} if group_by else {}
    header = {"variable": "n", "level": "", "statistic": "n", "overall": str(len(frame))}
    for g in group_levels:
        header[columns[g]] = str(int((frame[group_by] == g).sum()))
    rows = [header]
    for var in variables:
        values = frame[var]
        categorical = values.dtype == "category" or table.outcomes.get(var) == "bernoulli"
        if categorical:
            levels = (
                values.cat.categories
                if values.dtype == "category"
                else sorted(values.dropna().unique())
            )
            p, test = _categorical_test(values, frame[group_by]) if group_by else (float("nan"), "")
            for i, level in enumerate(levels):
                row = {"variable": var, "level": level_label(table, var, level)}
                row["statistic"] = "n (%)"
                row["overall"] = _n_pct(values, level)
                for g in group_levels:
                    row[columns[g]] = _n_pct(values[frame[group_by] == g], level)
                row["p_value"] = p if i == 0 else float("nan")
                row["test"] = test if i == 0 else ""
                rows.append(row)
        else:
            digits = decimals_for(float(values.std(ddof=1)))
            row = {"variable": var, "level": "", "statistic": "mean (SD)"}
            row["overall"] = _mean_sd(values, digits)
            splits = [values[frame[group_by] == g] for g in group_levels]
            for g, part in zip(group_levels, splits, strict=True):
                row[columns[g]] = _mean_sd(part, digits)
            row["p_value"], row["test"] = _continuous_test(splits) if group_by else (np.nan, "")
            rows.append(row)
    result = pd.DataFrame(rows)
    if formatted and "p_value" in result.columns:
        result["p_value"] = result["p_value"].map(format_p)
    return result


def _n_pct(values: pd.Series, level: object) -> str:
    n = int((values == level).sum())
    total = int(values.notna().sum())
    return f"{n} ({100 * n / total:.1f}%)" if total else "0"


def table2(table: AnalysisTable, formatted: bool = True) -> pd.DataFrame:
    """Per exposure: unit from the file label, detection frequency, GM, mean, percentiles.

    Formatted (the default): detection frequency with 1 decimal, the concentrations of an
    exposure with the decimals that show its median with 3 significant digits, as text (so
    that '0.120' keeps its zero); `formatted=False` gives the numbers.
    """
    rows = []
    for info in table.exposures:
        values = table.frame[info.name]
        flag = table.frame.get(f"{info.name}_below_lod")
        row = {
            "exposure": info.name,
            "variable": info.variable,
            "label": info.label,
            "unit": info.unit,
            "n": int(values.notna().sum()),
            "detection_frequency_pct": (
                100 * detection_frequency(flag) if flag is not None else float("nan")
            ),
            "geometric_mean": float(np.exp(np.log(values[values > 0]).mean())),
            "mean": float(values.mean()),
        }
        for pct in PERCENTILES:
            row[f"p{pct}"] = float(np.percentile(values, pct))
        if formatted:
            digits = decimals_for(float(np.median(values)), significant=3)
            for key in ("geometric_mean", "mean", *(f"p{pct}" for pct in PERCENTILES)):
                row[key] = f"{row[key]:.{digits}f}"
            pct = row["detection_frequency_pct"]
            row["detection_frequency_pct"] = f"{pct:.1f}" if np.isfinite(pct) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def correlations(table: AnalysisTable) -> pd.DataFrame:
    """Pearson correlations between log-transformed exposures."""
    logs = np.log(table.frame[table.exposure_names])
    return logs.corr(method="pearson")


def workbook(tables: dict[str, pd.DataFrame], path: Path) -> None:
    """Every table as one sheet (named by its key) of an .xlsx workbook, columns sized to
    their contents, the header row bold and frozen."""
    from openpyxl.styles import Font  # openpyxl only when a workbook is written
    from openpyxl.utils import get_column_letter

    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in tables.items():
            index = frame.index.name is not None or not isinstance(frame.index, pd.RangeIndex)
            frame.to_excel(writer, sheet_name=name[:31], index=index)
            sheet = writer.sheets[name[:31]]
            sheet.freeze_panes = "A2"
            for cell in sheet[1]:
                cell.font = Font(bold=True)
            for row in sheet.iter_rows(min_row=2):
                for cell in row:
                    _as_number(cell)
            for column in sheet.columns:
                width = max(len(str(c.value)) if c.value is not None else 0 for c in column)
                sheet.column_dimensions[get_column_letter(column[0].column)].width = min(
                    60, width + 2
                )


NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.(\d+))?")  # no leading zeros: "01" stays text


def _as_number(cell) -> None:
    """A cell holding a formatted number ('0.120') as that number, shown with the same
    decimals, so that Excel neither flags it as text nor drops its zeros."""
    if not isinstance(cell.value, str):
        return
    match = NUMBER.fullmatch(cell.value)
    if match is None:
        return
    decimals = len(match.group(3) or "")
    cell.value = float(cell.value) if decimals else int(cell.value)
    cell.number_format = "0." + "0" * decimals if decimals else "0"
