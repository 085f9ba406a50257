"""A study's subgroup analyses, read from its stratified fits' run folders: each exposure's
effect in each level of each modifier beside its effect in the whole sample, and the test of
effect modification (`summaries.glm.interaction`), as a long table, a paper-shaped wide
table and one forest plot per analysis, outcome and weighting (a panel per exposure).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from bayesmetal import compare, plots
from bayesmetal.design import TREND, split_stratum
from bayesmetal.study import Study, StudyFit

COLUMNS = ["analysis", "outcome", "covariates", "weighting", "exposure", "subgroup", "level"]
COLUMNS += ["measure", "estimate", "lower", "upper", "ci_prob", "p_interaction", "fit"]
COLUMNS += ["model_fit"]  # the effects table's own fit (single_Pb, trend_Pb, multi)
WHOLE_SAMPLE = "all"


def _read(study: Study, fit: StudyFit, name: str) -> pd.DataFrame | None:
    path = study.fit_folder(fit) / f"{name}.csv"
    return pd.read_csv(path) if study.done(fit) and path.is_file() else None


def _keys(fit: StudyFit) -> dict[str, str]:
    return {
        "analysis": fit.analysis,
        "outcome": fit.outcome,
        "covariates": fit.covariate_set,
        "weighting": "survey" if fit.survey else "unweighted",
    }


def _stratified(study: Study, fit: StudyFit) -> pd.DataFrame | None:
    """One subgroup fit's strata: a row per exposure and level, with its P for interaction."""
    effects, tests = _read(study, fit, "effects"), _read(study, fit, "interaction")
    if effects is None or tests is None:
        return None
    split = [split_stratum(str(term)) for term in effects["term"]]
    p = dict(zip(tests["term"], tests["p_interaction"], strict=True))
    return effects.assign(
        **_keys(fit),
        exposure=[term for term, _ in split],
        subgroup=fit.subgroup,
        level=[stratum.partition("=")[2] for _, stratum in split],
        p_interaction=[p.get(term) for term, _ in split],
        fit=fit.label,
        model_fit=effects["fit"],
    )[COLUMNS]


def _whole_sample(study: Study, fit: StudyFit) -> pd.DataFrame | None:
    """The unstratified fit's effects, as the first row of every forest plot."""
    effects = _read(study, fit, "effects")
    if effects is None:
        return None
    return effects.assign(
        **_keys(fit),
        exposure=effects["term"].astype(str),
        subgroup=WHOLE_SAMPLE,
        level=WHOLE_SAMPLE,
        p_interaction=float("nan"),
        fit=fit.label,
        model_fit=effects["fit"],
    )[COLUMNS]


def subgroup_table(study: Study) -> pd.DataFrame:
    """Every finished subgroup fit's strata, after the whole-sample effects of the same
    analysis, outcome, covariate set and weighting (where that fit is done)."""
    stratified = [f for f in study.fits if f.subgroup]
    bases = {(f.analysis, f.outcome, f.covariate_set, f.survey) for f in stratified}
    parts = [
        _whole_sample(study, f)
        for f in study.fits
        if not f.subgroup
        and f.variant == "main"
        and (f.analysis, f.outcome, f.covariate_set, f.survey) in bases
    ]
    strata = [s for s in (_stratified(study, f) for f in stratified) if s is not None]
    if not strata:  # no stratified fit done yet: nothing to set the whole sample beside
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat([p for p in parts if p is not None] + strata, ignore_index=True)


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's subgroup table: a row per analysis, exposure, modifier and level, then the
    modifier's P for interaction; a column per outcome, covariate set and weighting."""
    if table.empty:
        return pd.DataFrame()
    column = table["outcome"] + " | " + table["covariates"] + " | " + table["weighting"]
    text = [
        compare.interval_text(e, lo, hi)
        for e, lo, hi in table[["estimate", "lower", "upper"]].to_numpy(dtype=float)
    ]
    cells = table.assign(column=column, text=text)
    tests = cells.dropna(subset=["p_interaction"]).drop_duplicates(
        ["analysis", "exposure", "subgroup", "column"]
    )
    tests = tests.assign(level="P for interaction", text=tests["p_interaction"].map(p_text))
    rows = pd.concat([cells, tests], ignore_index=True)
    order = {  # as they come: the study's analyses, exposures and modifiers, not A-Z
        key: {value: i for i, value in enumerate(dict.fromkeys(table[key]))}
        for key in ("analysis", "exposure", "subgroup")
    }
    ranks = [rows[key].map(order[key]).rename(f"_{key}") for key in order]
    rows = pd.concat([rows, *ranks], axis=1).sort_values(
        [f"_{key}" for key in order], kind="stable"
    )
    out = rows.pivot_table(
        index=["analysis", "exposure", "subgroup", "level"],
        columns="column",
        values="text",
        aggfunc="first",
        sort=False,
    )
    out.columns.name = None
    return out.reset_index().fillna("-")


def p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def figures(table: pd.DataFrame) -> dict[str, Figure]:
    """One subgroup forest plot per analysis, outcome, covariate set and weighting; for a
    quantile analysis, of its trends (a panel per exposure; the quartiles are in the table)."""
    out = {}
    keys = ["analysis", "outcome", "covariates", "weighting"]
    for key, part in table.groupby(keys, sort=False):
        if not (part["subgroup"] != WHOLE_SAMPLE).any():
            continue
        scale = "per unit of log concentration"
        trend = part["model_fit"].astype(str).str.startswith("trend_")
        if trend.any():
            part = part[trend].assign(exposure=part.loc[trend, "exposure"].str.removesuffix(TREND))
            scale = "trend, per SD of the quantile medians"
        name = ".".join(key)
        title = f"{key[0]}: {key[1]} ({key[2]}, {key[3]}), by subgroup"
        out[name] = plots.subgroup_forest(part, title, scale=scale)
    return out
