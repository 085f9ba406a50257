"""Descriptive tables: Table 1 (with tests), Table 2 (exposure distributions), correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from bayesmetal.cohort import AnalysisTable
from bayesmetal.exposures import detection_frequency

PERCENTILES = (5, 25, 50, 75, 95)


def _mean_sd(values: pd.Series) -> str:
    return f"{values.mean():.3g} ({values.std(ddof=1):.3g})"


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


def table1(table: AnalysisTable, group_by: str | None = None) -> pd.DataFrame:
    """Covariates and outcomes, overall and by group: mean (SD) or n (%), with p-values.

    Unweighted: it describes the analysis sample, as the published Table 1s do.
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
    header = {"variable": "n", "level": "", "statistic": "n", "overall": str(len(frame))}
    for g in group_levels:
        header[f"{group_by}={g}"] = str(int((frame[group_by] == g).sum()))
    rows = [header]
    for var in variables:
        values = frame[var]
        categorical = values.dtype == "category" or table.outcomes.get(var) == "bernoulli"
        if categorical:
            levels = (
                values.cat.categories if values.dtype == "category" else sorted(values.unique())
            )
            p, test = _categorical_test(values, frame[group_by]) if group_by else (float("nan"), "")
            for i, level in enumerate(levels):
                row = {"variable": var, "level": str(level), "statistic": "n (%)"}
                row["overall"] = _n_pct(values, level)
                for g in group_levels:
                    row[f"{group_by}={g}"] = _n_pct(values[frame[group_by] == g], level)
                row["p_value"] = p if i == 0 else float("nan")
                row["test"] = test if i == 0 else ""
                rows.append(row)
        else:
            row = {"variable": var, "level": "", "statistic": "mean (SD)"}
            row["overall"] = _mean_sd(values)
            splits = [values[frame[group_by] == g] for g in group_levels]
            for g, part in zip(group_levels, splits, strict=True):
                row[f"{group_by}={g}"] = _mean_sd(part)
            row["p_value"], row["test"] = _continuous_test(splits) if group_by else (np.nan, "")
            rows.append(row)
    return pd.DataFrame(rows)


def _n_pct(values: pd.Series, level: object) -> str:
    n = int((values == level).sum())
    total = int(values.notna().sum())
    return f"{n} ({100 * n / total:.1f}%)" if total else "0"


def table2(table: AnalysisTable) -> pd.DataFrame:
    """Per exposure: unit from the file label, detection frequency, GM, mean, percentiles."""
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
        rows.append(row)
    return pd.DataFrame(rows)


def correlations(table: AnalysisTable) -> pd.DataFrame:
    """Pearson correlations between log-transformed exposures."""
    logs = np.log(table.frame[table.exposure_names])
    return logs.corr(method="pearson")
