"""Design-based (weighted) Table 1 and Table 2: NHANES population estimates for the cohort.

Every estimate is a domain (subpopulation) estimate on the whole survey design
(`AnalysisTable.survey`): persons outside the analysis sample keep their stratum and PSU and add
zeros, never a subsetted design, and variances are Taylor-linearised with a with-replacement
first stage (R: svydesign(ids=~psu, strata=~stratum, weights=~weight, nest=TRUE), then
subset() to the domain). Table 1 gives weighted means and percentages with their SEs, and
design-based tests by group: the Rao-Scott second-order F (R's svychisq default) for
categorical variables, the design-based t-test (svyttest, df = design df - 1) for a continuous
variable in two groups, the Wald F of the group term of a survey linear model (regTermTest on
svyglm) for more. Table 2 gives the weighted geometric mean (exp of the domain mean of the log,
t interval on the design df) and weighted percentiles with Woodruff intervals (survey 4.x
svyquantile's default: interval.type = "mean", qrule = "math"). The design df is R's degf of
the domain: PSUs minus strata that hold domain members.

Library: svy (PyPI `svy`, from the authors of samplics, which is archived and points to it).
It installs cleanly on Python 3.11 (wheels only: svy-rs, polars), keeps the full design for
`where=` domains, and gives every statistic above (domain means and proportions, Rao-Scott
tables, design t-tests, GLM Wald term tests, Woodruff quantiles); all of them agree with R's
survey 4.1 (tests/test_weighted_describe.py). Computed here: only the joins (the domain's
variables onto the design, as level codes), unweighted counts, the geometric mean as the
exponential of svy's log-scale mean and interval, and the formatting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl
import svy

from bayesmetal.cohort import AnalysisTable
from bayesmetal.errors import DataError
from bayesmetal.summaries.describe import (
    PERCENTILES,
    decimals_for,
    format_p,
    group_column,
    level_label,
)

GROUP = "__group"  # the group's level code: -1 outside the domain or where missing
OK = "__ok__"  # prefix of a variable's domain column: in the analysis sample and not missing
LOG = "__log__"  # prefix of an exposure's log concentration (its domain: positive values)
ONE = "__one__"  # 1 for every person: its weighted total is the domain's population size


def _ok(name: str) -> str:
    return f"{OK}{name}"


@dataclass(frozen=True)
class DomainDesign:
    """The whole survey design with the domain's variables joined on: numeric variables as
    they are, categorical ones as level codes (`levels[var]`), 0 / -1 outside the domain."""

    sample: svy.Sample
    levels: dict[str, list]
    group_levels: list

    def _where(self, variable: str, by_group: bool) -> list:
        where = [svy.col(_ok(variable))]
        return [*where, svy.col(GROUP) >= 0] if by_group else where

    def mean(self, variable: str, by_group: bool = False) -> pd.DataFrame:
        """Weighted domain mean of a numeric variable: est, se, lci, uci (t on the design df),
        one row per group level (`group`) with `by_group`."""
        by = GROUP if by_group else None
        result = self.sample.estimation.mean(variable, by=by, where=self._where(variable, by_group))
        return self._frame(result.to_polars(), by_group)

    def proportions(self, variable: str, by_group: bool = False) -> pd.DataFrame:
        """Weighted domain proportion of each level of a categorical variable: `level` (the
        level itself), est, se, overall or per group."""
        by = GROUP if by_group else None
        result = self.sample.estimation.prop(variable, by=by, where=self._where(variable, by_group))
        frame = self._frame(result.to_polars(), by_group)
        frame = frame.loc[frame[variable] >= 0]
        return frame.assign(level=[self.levels[variable][c] for c in frame[variable]])

    def population(self, by_group: bool = False) -> pd.DataFrame:
        """Weighted population size (sum of weights) of the domain, overall or per group."""
        by = GROUP if by_group else None
        result = self.sample.estimation.total(ONE, by=by, where=self._where(ONE, by_group))
        return self._frame(result.to_polars(), by_group)

    def quantiles(self, variable: str, percentiles: tuple[int, ...]) -> pd.DataFrame:
        """Weighted domain percentiles with Woodruff 95% intervals (R svyquantile's default):
        percentile, est, lci, uci, se."""
        p = tuple(q / 100 for q in percentiles)
        result = self.sample.estimation.quantile(variable, p=p, where=self._where(variable, False))
        frame = result.to_polars().to_pandas()
        return frame.assign(percentile=list(percentiles))

    def geometric_mean(self, variable: str) -> dict[str, float]:
        """exp of the weighted domain mean of the log of a positive variable, with its 95% CI
        (t on the design df); log_mean and log_se are svy's estimate on the log scale."""
        row = self.mean(f"{LOG}{variable}").iloc[0]
        return {
            "geometric_mean": float(np.exp(row["est"])),
            "lci": float(np.exp(row["lci"])),
            "uci": float(np.exp(row["uci"])),
            "log_mean": float(row["est"]),
            "log_se": float(row["se"]),
        }

    def categorical_test(self, variable: str) -> tuple[float, str]:
        """Rao-Scott second-order F test of the level x group table (R svychisq's default)."""
        if not self._testable(variable):
            return float("nan"), ""
        table = self.sample.categorical.tabulate(variable, GROUP, where=self._where(variable, True))
        return float(table.stats.f.p_value), "Rao-Scott F"

    def continuous_test(self, variable: str) -> tuple[float, str]:
        """Design-based t-test for two groups (R svyttest), Wald F of the group term of the
        survey linear model for more (R regTermTest on svyglm)."""
        if not self._testable(variable):
            return float("nan"), ""
        where = self._where(variable, True)
        if len(self.group_levels) == 2:
            result = self.sample.categorical.ttest(variable, group=GROUP, where=where)
            return float(result.to_polars()["p_value"][0]), "design-based t-test"
        fit = self.sample.glm.fit(y=variable, x=[svy.Cat(GROUP)], family="gaussian", where=where)
        return float(fit.term_test(svy.Cat(GROUP)).p_value), "design-based Wald F"

    def _testable(self, variable: str) -> bool:
        """A test needs two groups with members (and two levels, for a categorical)."""
        data = self.sample.data.filter(pl.col(_ok(variable)) & (pl.col(GROUP) >= 0))
        groups = data[GROUP].n_unique()
        return groups >= 2 and (variable not in self.levels or data[variable].n_unique() >= 2)

    def _frame(self, result: pl.DataFrame, by_group: bool) -> pd.DataFrame:
        """svy's result as pandas, with the group's level (`group`) for group estimates."""
        frame = result.to_pandas()
        if by_group:
            frame = frame.loc[frame[GROUP] >= 0]
            frame = frame.assign(group=[self.group_levels[c] for c in frame[GROUP]])
        return frame.reset_index(drop=True)


def is_categorical(table: AnalysisTable, variable: str) -> bool:
    """Categorical in Table 1: a category column or a bernoulli outcome."""
    values = table.frame[variable]
    return values.dtype == "category" or table.outcomes.get(variable) == "bernoulli"


def levels_of(values: pd.Series) -> list:
    """The levels a table lists: a category's own order, else the sorted values."""
    if values.dtype == "category":
        return list(values.cat.categories)
    return sorted(values.dropna().unique())


def domain_design(
    table: AnalysisTable,
    variables: list[str],
    exposures: tuple[str, ...] = (),
    group_by: str | None = None,
) -> DomainDesign:
    """Join the domain's `variables` (Table 1) and `exposures` (Table 2, raw and log) onto the
    whole design of `table`; categorical variables and the group become level codes."""
    if table.survey is None:
        raise DataError("a weighted table needs the survey design: load the cohort with survey")
    design = table.survey.frame
    missing = pd.Index(table.frame["SEQN"]).difference(design.loc[design["in_domain"], "SEQN"])
    if len(missing):  # never counted in n but left out of the estimates
        raise DataError(
            f"{len(missing)} persons of the analysis sample have no positive survey weight "
            f"{table.survey.weight_variable} (e.g. SEQN {missing[0]}); choose the weight of "
            "the smallest subsample the analysis uses"
        )
    frame = table.frame.set_index("SEQN")
    positions = design["SEQN"].map(pd.Series(np.arange(len(frame)), frame.index))
    inside = design["in_domain"].to_numpy(bool) & positions.notna().to_numpy()
    rows = positions.fillna(0).to_numpy(int)
    columns: dict[str, np.ndarray] = {
        "weight": design["weight"].to_numpy(float),
        "stratum": design["stratum"].to_numpy(),
        "psu": design["psu"].to_numpy(int),
        ONE: np.ones(len(design)),
        _ok(ONE): inside,
    }
    levels: dict[str, list] = {}
    for var in variables:
        values = frame[var].iloc[rows]
        if is_categorical(table, var):
            levels[var] = levels_of(frame[var])
            _add(columns, var, _codes(values, levels[var]), inside, missing=-1)
        else:
            _add(columns, var, values.to_numpy(float), inside, missing=0.0)
    for name in exposures:
        values = frame[name].iloc[rows].to_numpy(float)
        _add(columns, name, values, inside, missing=0.0)
        positive = np.where(values > 0, values, np.nan)
        _add(columns, f"{LOG}{name}", np.log(positive), inside, missing=0.0)
    group_levels = levels_of(frame[group_by]) if group_by else []
    if group_by:
        codes = _codes(frame[group_by].iloc[rows], group_levels)
        columns[GROUP] = np.where(inside & ~np.isnan(codes), codes, -1).astype(int)
    sample = svy.Sample(
        pl.DataFrame(columns), svy.Design(stratum="stratum", psu="psu", wgt="weight")
    )
    return DomainDesign(sample, levels, group_levels)


def _codes(values: pd.Series, levels: list) -> np.ndarray:
    """Each value's position in `levels`; NaN for a missing value."""
    codes = pd.Categorical(values.astype(object), categories=levels).codes.astype(float)
    return np.where(codes < 0, np.nan, codes)


def _add(columns: dict, name: str, values: np.ndarray, inside: np.ndarray, missing: float) -> None:
    """A variable and its domain column (inside the analysis sample, value not missing); the
    `missing` placeholder where it is outside, which no estimate reads (an int placeholder
    keeps level codes integers)."""
    ok = inside & ~np.isnan(values)
    columns[name] = np.where(ok, values, missing)
    if isinstance(missing, int):
        columns[name] = columns[name].astype(int)
    columns[_ok(name)] = ok


def table1_weighted(
    table: AnalysisTable, group_by: str | None = None, formatted: bool = True
) -> pd.DataFrame:
    """Table 1 of the population: weighted mean (SE) or % (SE), overall and by group, each
    beside its unweighted n, with design-based p-values.

    The rows are those of `describe.table1`; each of `overall` and the group columns has an
    `n` column before it (unweighted counts: persons, or persons at the level). The first row
    gives the domain's n and its weighted population size. Means carry the decimals that show
    their SE with 2 significant digits, percentages 1 decimal; p-values are text ('< 0.001',
    else 3 decimals), or the numbers with `formatted=False`.
    """
    variables = [v for v in [*table.covariates, *table.outcomes] if v != group_by]
    design = domain_design(table, variables, group_by=group_by)
    columns = {g: group_column(table, group_by, g) for g in design.group_levels}
    rows = [_header(table, design, group_by, columns)]
    for var in variables:
        if var in design.levels:
            rows.extend(_categorical_rows(table, design, var, group_by, columns))
        else:
            rows.append(_continuous_row(table, design, var, group_by, columns))
    result = pd.DataFrame(rows)
    if formatted and "p_value" in result.columns:
        result["p_value"] = result["p_value"].map(format_p)
    return result


def _n_column(column: str) -> str:
    """The header of the unweighted-n column beside a column of estimates."""
    return "n" if column == "overall" else f"n, {column}"


def _header(
    table: AnalysisTable, design: DomainDesign, group_by: str | None, columns: dict
) -> dict:
    """The first row: unweighted n and the weighted population size (sum of weights)."""
    row = {"variable": "n", "level": "", "statistic": "n, weighted N"}
    row["n"], row["overall"] = len(table.frame), _thousands(design.population()["est"][0])
    if group_by:
        sizes = design.population(by_group=True).set_index("group")["est"]
        for g, column in columns.items():
            row[_n_column(column)] = int((table.frame[group_by] == g).sum())
            row[column] = _thousands(sizes.get(g, 0.0))
    return row


def _thousands(total: float) -> str:
    return f"{total:,.0f}"


def _continuous_row(
    table: AnalysisTable, design: DomainDesign, var: str, group_by: str | None, columns: dict
) -> dict:
    """A continuous variable's row: weighted mean (SE), overall and by group, and its test."""
    values = table.frame[var]
    overall = design.mean(var).iloc[0]
    digits = decimals_for(float(overall["se"]))
    row = {"variable": var, "level": "", "statistic": "mean (SE)"}
    row["n"], row["overall"] = int(values.notna().sum()), _mean_se(overall, digits)
    if group_by:
        by_group = design.mean(var, by_group=True).set_index("group")
        for g, column in columns.items():
            row[_n_column(column)] = int(values[table.frame[group_by] == g].notna().sum())
            row[column] = _mean_se(by_group.loc[g], digits) if g in by_group.index else ""
        row["p_value"], row["test"] = design.continuous_test(var)
    return row


def _mean_se(estimate: pd.Series, digits: int) -> str:
    return f"{estimate['est']:.{digits}f} ({estimate['se']:.{digits}f})"


def _categorical_rows(
    table: AnalysisTable, design: DomainDesign, var: str, group_by: str | None, columns: dict
) -> list[dict]:
    """A categorical variable's rows, one per level: weighted % (SE), overall and by group;
    the Rao-Scott test on the first."""
    values = table.frame[var]
    overall = design.proportions(var).set_index("level")
    by_group = design.proportions(var, by_group=True) if group_by else None
    p, test = design.categorical_test(var) if group_by else (float("nan"), "")
    rows = []
    for i, level in enumerate(design.levels[var]):
        row = {"variable": var, "level": level_label(table, var, level), "statistic": "% (SE)"}
        row["n"], row["overall"] = int((values == level).sum()), _pct_se(overall, level)
        for g, column in columns.items():
            in_group = table.frame[group_by] == g
            cells = by_group.loc[by_group["group"] == g].set_index("level")
            row[_n_column(column)] = int((values[in_group] == level).sum())
            row[column] = _pct_se(cells, level)
        if group_by:
            row["p_value"], row["test"] = (p, test) if i == 0 else (float("nan"), "")
        rows.append(row)
    return rows


def _pct_se(proportions: pd.DataFrame, level: object) -> str:
    """A level's weighted percentage and its SE, 1 decimal; 0 where no one has the level."""
    if level not in proportions.index:
        return "0.0 (0.0)"
    estimate = proportions.loc[level]
    return f"{100 * estimate['est']:.1f} ({100 * estimate['se']:.1f})"


def table2_weighted(table: AnalysisTable, formatted: bool = True) -> pd.DataFrame:
    """Table 2 of the population, per exposure: unweighted n, weighted geometric mean and
    weighted percentiles (`describe.PERCENTILES`), each with its 95% CI.

    Formatted (the default): 'estimate (lower, upper)' as text, with the decimals that show the
    exposure's weighted median with 3 significant digits; `formatted=False` gives the numbers,
    each estimate followed by `<name>_lci` and `<name>_uci`.
    """
    names = table.exposure_names
    design = domain_design(table, [], exposures=tuple(names))
    rows = []
    for info in table.exposures:
        row = {"exposure": info.name, "variable": info.variable, "label": info.label}
        row["unit"], row["n"] = info.unit, int(table.frame[info.name].notna().sum())
        gm = design.geometric_mean(info.name)
        row |= {"geometric_mean": gm["geometric_mean"]}
        row |= {"geometric_mean_lci": gm["lci"], "geometric_mean_uci": gm["uci"]}
        for q in design.quantiles(info.name, PERCENTILES).itertuples():
            row |= {f"p{q.percentile}": q.est, f"p{q.percentile}_lci": q.lci}
            row[f"p{q.percentile}_uci"] = q.uci
        rows.append(_formatted_exposure(row) if formatted else row)
    return pd.DataFrame(rows)


def _formatted_exposure(row: dict) -> dict:
    """An exposure's estimates as 'estimate (lower, upper)' text with shared decimals."""
    digits = decimals_for(float(row["p50"]), significant=3)
    out = {key: row[key] for key in ("exposure", "variable", "label", "unit", "n")}
    for key in ("geometric_mean", *(f"p{pct}" for pct in PERCENTILES)):
        est, lci, uci = row[key], row[f"{key}_lci"], row[f"{key}_uci"]
        out[key] = f"{est:.{digits}f} ({lci:.{digits}f}, {uci:.{digits}f})"
    return out
