"""The study report: every fit's headline quantities in the paper's shape, the cohort's
tables, the prior-sensitivity changes and a convergence panel, read from the study folder's
run folders (never the data or the posteriors), written as report.html, CSV and xlsx.

Each analysis gets one table: its quantities (effects, weights, PIPs, overall risk, psi) as
rows and one column per outcome, covariate set and weighting, `estimate [lower, upper]`;
figures are the fits' own (BKMR's exposure-response curves, the correlation heatmap).
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass

import pandas as pd

from bayesmetal import compare, loo, report, study_subgroups
from bayesmetal.runs import figure_bytes, is_run_folder, write_file_atomically
from bayesmetal.study import Study, StudyFit

STATUS_OK, STATUS_FLAGGED, STATUS_FAILED, STATUS_PENDING = (
    "converged",
    "NOT CONVERGED",
    "summaries failed",
    "not run",
)
CONVERGENCE_COLUMNS = ["fit", "analysis", "outcome", "covariates", "weighting", "variant"]
CONVERGENCE_COLUMNS += ["status", "flagged", "problems", "max_rhat", "min_ess_bulk"]
CONVERGENCE_COLUMNS += ["divergences", "folder"]
BANNER_ITEMS = 8  # fits named in the banner; all of them are in the convergence panel
FIGURES = {"bkmr": "univariate", "bwqs": "weights", "glm": "forest", "qgcomp": "gcomp"}


@dataclass
class StudyResults:
    """What the report shows, also written as CSV."""

    convergence: pd.DataFrame  # one row a fit
    results: pd.DataFrame  # one row a fit and headline quantity (long form)
    sensitivity: pd.DataFrame  # conclusions that change under a variant's priors
    comparison: pd.DataFrame  # PSIS-LOO of the unweighted fits, by outcome and covariates
    descriptives: dict[str, pd.DataFrame]
    figures: dict[str, bytes]  # name -> PNG
    subgroups: pd.DataFrame  # study_subgroups.subgroup_table (long)
    subgroup_figures: dict[str, tuple[bytes, bytes]]  # name -> (PNG, SVG)


def _column(fit: StudyFit) -> str:
    """The results column of a fit: outcome, covariate set, weighting, variant."""
    parts = [fit.outcome, fit.covariate_set]
    parts += ["survey"] if fit.survey else []
    parts += [fit.variant] if fit.variant != "main" else []
    return " | ".join(parts)


def convergence_row(study: Study, fit: StudyFit) -> dict[str, object]:
    folder = study.fit_folder(fit)
    row: dict[str, object] = {
        "fit": fit.label,
        "analysis": fit.analysis,
        "outcome": fit.outcome,
        "covariates": fit.covariate_set,
        "weighting": "survey" if fit.survey else "unweighted",
        "variant": fit.variant,
    }
    if not is_run_folder(folder):
        log = study.folder / "logs" / f"{fit.label}.log"
        return row | {
            "status": STATUS_PENDING,
            "problems": f"its output: {log}" if log.is_file() else "",
        }
    diagnostics_file = folder / "diagnostics.csv"
    if not study.done(fit) or not diagnostics_file.is_file():
        hint = "rerun the study, or python scripts/fit.py --summarise on the folder"
        return row | {"status": STATUS_FAILED, "problems": hint, "folder": folder.name}
    diagnostics = pd.read_csv(diagnostics_file)
    ok = diagnostics["ok"].astype(str).str.lower().eq("true")
    return row | {
        "status": STATUS_OK if ok.all() else STATUS_FLAGGED,
        "flagged": int((~ok).sum()),
        "problems": "; ".join(
            f"{p}: {why}"
            for p, why in diagnostics.loc[~ok, ["parameter", "problems"]].head(3).to_numpy()
        ),
        "max_rhat": float(diagnostics["rhat"].max()),
        "min_ess_bulk": float(diagnostics["ess_bulk"].min()),
        "divergences": int(diagnostics.groupby("fit")["divergences"].max().sum()),
        "folder": folder.name,
    }


P_TREND = "P for trend"


def _trend_p(effects: pd.DataFrame | None) -> pd.DataFrame:
    """A quantile GLM's P for trend (its trend fits' two-sided Bayesian P), a row each."""
    if effects is None or "p_two_sided" not in effects:
        return pd.DataFrame()
    trend = effects[effects["fit"].astype(str).str.startswith("trend_")]
    return pd.DataFrame(
        {
            "quantity": P_TREND,
            "item": trend["term"].astype(str),
            "own_estimate": trend["p_two_sided"],
            "own_is": "2 x (1 - probability of direction)",
        }
    )


def _headline(study: Study, fit: StudyFit) -> pd.DataFrame:
    run = compare.read_run(study.fit_folder(fit), fit.label)
    rows = pd.concat([compare.headline(run), _trend_p(run.tables.get("effects"))])
    estimate, statistic = rows["own_estimate"], rows["own_is"]
    return pd.DataFrame(
        {
            "analysis": fit.analysis,
            "column": _column(fit),
            "fit": fit.label,
            "quantity": rows["quantity"],
            "item": rows["item"],
            "estimate": estimate,
            "estimate_is": statistic,
            "lower": rows["lower"],
            "upper": rows["upper"],
        }
    )


def sensitivity_table(study: Study) -> pd.DataFrame:
    """For each variant fit, what changes against the main fit of its analysis and outcome."""
    rows = []
    main = {  # a variant is unweighted: its base is the unweighted main fit
        (f.analysis, f.outcome, f.covariate_set): f
        for f in study.fits
        if f.variant == "main" and not f.survey and not f.subgroup
    }
    for fit in study.fits:
        if fit.variant == "main" or fit.survey:
            continue
        base = main.get((fit.analysis, fit.outcome, fit.covariate_set))
        if base is None or not (study.done(base) and study.done(fit)):
            continue
        try:
            runs = [
                compare.read_run(study.fit_folder(base), "main"),
                compare.read_run(study.fit_folder(fit), fit.variant),
            ]
        except compare.NotARunFolderError:
            continue
        result = compare.compare_runs(runs)
        differs = result.config_diff
        priors = "; ".join(
            f"{k}: {a} -> {b}"
            for k, a, b in differs[["key", "main", fit.variant]].to_numpy()
            if str(k).startswith("priors.")
        )
        changed = compare.change_texts(result.changes)
        rows.append(
            {
                "analysis": fit.analysis,
                "outcome": fit.outcome,
                "variant": fit.variant,
                "priors": priors,
                "conclusions that change": "; ".join(changed) or "none",
            }
        )
    return pd.DataFrame(rows)


def model_comparison(study: Study) -> pd.DataFrame:
    """PSIS-LOO of every unweighted main fit, grouped by outcome and covariate set (the same
    persons): elpd_loo and its SE, the difference from the best model of the group and its
    SE (from the pointwise differences), and how many Pareto k exceed 0.7."""
    groups: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for fit in study.fits:
        path = study.fit_folder(fit) / "loo_pointwise.csv"
        if fit.survey or fit.variant != "main" or fit.subgroup or not path.is_file():
            continue
        points = pd.read_csv(path)
        several = points["fit"].nunique() > 1  # GLM single: one fit a metal
        points["model"] = [
            f"{fit.analysis}: {f}" if several else fit.analysis for f in points["fit"]
        ]
        groups.setdefault((fit.outcome, fit.covariate_set), []).append(points)
    rows = []
    for (outcome, covariate_set), parts in groups.items():
        points = pd.concat(parts, ignore_index=True)
        table = loo.summary(points.assign(fit=points["model"])).sort_values(
            "elpd_loo", ascending=False
        )
        best = points[points["model"] == table.iloc[0]["fit"]].set_index("obs")["elpd_loo"]
        for _, row in table.iterrows():
            mine = points[points["model"] == row["fit"]].set_index("obs")["elpd_loo"]
            same = mine.index.equals(best.index)
            diff, se = loo.difference(best, mine) if same else (float("nan"), float("nan"))
            rows.append(
                {
                    "outcome": outcome,
                    "covariates": covariate_set,
                    "model": row["fit"],
                    "elpd_loo": row["elpd_loo"],
                    "se": row["se"],
                    "elpd_diff": diff,
                    "se_diff": se,
                    "n": row["n"],
                    "pareto_k_above_0.7": row["k_above_0.7"],
                }
            )
    return pd.DataFrame(rows)


def collect(study: Study) -> StudyResults:
    rows = [convergence_row(study, fit) for fit in study.fits]
    convergence = pd.DataFrame(rows).reindex(columns=CONVERGENCE_COLUMNS)
    parts, figures = [], {}
    for fit in study.fits:
        if fit.subgroup:  # their own section (study_subgroups)
            continue
        if not study.done(fit) or not (study.fit_folder(fit) / "diagnostics.csv").is_file():
            continue
        try:
            parts.append(_headline(study, fit))
        except compare.NotARunFolderError:
            continue
        figure = study.fit_folder(fit) / f"{FIGURES.get(fit.model, '')}.png"
        if fit.variant == "main" and figure.is_file():
            figures[f"{fit.label}"] = figure.read_bytes()
    results = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    descriptives, describe = {}, study.describe_folder
    if describe.is_dir():
        for name in ("table1", "table1_weighted", "table2", "table2_weighted"):
            if (describe / f"{name}.csv").is_file():
                descriptives[name] = pd.read_csv(describe / f"{name}.csv", keep_default_na=False)
        if (describe / "correlations.png").is_file():
            figures = {"correlations": (describe / "correlations.png").read_bytes(), **figures}
    subgroups = study_subgroups.subgroup_table(study)
    return StudyResults(
        convergence,
        results,
        sensitivity_table(study),
        model_comparison(study),
        descriptives,
        figures,
        subgroups,
        {k: figure_bytes(f) for k, f in study_subgroups.figures(subgroups).items()},
    )


def analysis_table(results: pd.DataFrame, analysis: str) -> pd.DataFrame:
    """One analysis's quantities side by side: a column per outcome, covariate set and
    weighting, each `estimate [lower, upper]`."""
    mine = results[results["analysis"] == analysis]
    text = [
        study_subgroups.p_text(e) if q == P_TREND else compare.interval_text(e, lo, hi)
        for q, e, lo, hi in zip(
            mine["quantity"], *mine[["estimate", "lower", "upper"]].to_numpy(float).T, strict=True
        )
    ]
    wide = mine.assign(text=text).pivot_table(
        index=["quantity", "item"], columns="column", values="text", aggfunc="first", sort=False
    )
    wide.columns.name = None
    return wide.reset_index().fillna("-")


def _section(title: str, body: str, anchor: str) -> str:
    return f"<section id='{anchor}'><h2>{html.escape(title)}</h2>{body}</section>"


def _subgroup_body(found: StudyResults) -> str:
    """The subgroup table and forest plots, with how to read the test."""
    caption = (
        "each exposure's effect in the whole sample (all: the analysis's own fit) and in each "
        "level of each modifier: the analysis refitted with a slope per level (model.by), the "
        "modifier's main effect adjusted for; P for interaction: Wald test of the slopes' "
        "differences from their posterior (with weak priors, the frequentist test of the "
        "exposure x modifier terms; for survey fits the design-based F test on the design df). "
        "Many subgroups give some small P by chance: read them as exploratory"
    )
    body = f"<p class=caption>{html.escape(caption)}</p>"
    body += report.table_html(study_subgroups.wide(found.subgroups))
    images = "".join(report.image(name, png) for name, (png, _) in found.subgroup_figures.items())
    return body + report.details("<b>subgroup forest plots</b>", images, open_=True)


def render(study: Study, found: StudyResults) -> str:
    """The study's report.html text: the convergence verdict first, then each analysis's
    table, the figures, the sensitivity table, the cohort's tables and every fit's row."""
    spec = study.spec
    convergence = found.convergence
    status = convergence["status"] if "status" in convergence else pd.Series(dtype=str)
    done = int(status.isin([STATUS_OK, STATUS_FLAGGED]).sum())
    bad = convergence[~status.eq(STATUS_OK)]
    parts = [
        "<!doctype html><html lang=en><head><meta charset='utf-8'>"
        f"<title>{html.escape(spec.study)}</title><style>{report.STYLE}</style></head><body>",
        f"<h1>study {html.escape(spec.study)}</h1>",
        f"<p class=lead>{html.escape(spec.description)} &middot; <b>outcomes</b> "
        f"{html.escape(', '.join(spec.outcomes))} &middot; <b>covariate sets</b> "
        + html.escape("; ".join(f"{k}: {', '.join(v)}" for k, v in spec.covariate_sets.items()))
        + f" &middot; <b>fits</b> {done} of {len(study.fits)} done</p>",
    ]
    if bad.empty:
        parts.append(
            "<div class='banner ok'>Every fit converged (R-hat, ESS, divergences "
            "within their targets).</div>"
        )
    else:
        items = "".join(
            f"<li><b>{html.escape(str(r.fit))}</b>: {html.escape(str(r.status))}"
            + (f" ({html.escape(str(r.problems))})" if isinstance(r.problems, str) else "")
            + "</li>"
            for r in bad.head(BANNER_ITEMS).itertuples()
        )
        if len(bad) > BANNER_ITEMS:
            items += f"<li>and {len(bad) - BANNER_ITEMS} more</li>"
        parts.append(
            f"<div class='banner bad'><b>{len(bad)} of {len(convergence)} fits need attention"
            f"</b> (convergence panel below)<ul>{items}</ul></div>"
        )
    results = found.results
    for analysis in dict.fromkeys(f.analysis for f in study.fits):
        if results.empty or analysis not in set(results["analysis"]):
            continue
        table = analysis_table(results, analysis)
        mine = results[results["analysis"] == analysis]
        statistic = sorted(set(mine.loc[mine["quantity"] != P_TREND, "estimate_is"]))
        caption = (
            f"estimate [{(study.base.get('summaries') or {}).get('ci_prob', 0.95):.0%} interval]; "
            f"estimate: posterior {', '.join(map(str, statistic))}"
        )
        if (mine["quantity"] == P_TREND).any():
            caption += (
                "; P for trend: 2 x (1 - probability of direction) of the slope on each "
                "quantile's median concentration (the Bayesian counterpart of a two-sided P)"
            )
        body = f"<p class=caption>{html.escape(caption)}</p>" + report.table_html(table)
        figures = [
            report.image(label, png)
            for label, png in found.figures.items()
            if label.startswith(f"{analysis}.")
        ]
        if figures:
            body += report.details("<b>figures</b>", "".join(figures), open_=analysis == "bkmr")
        parts.append(_section(analysis, body, f"analysis-{analysis}"))
    if not found.subgroups.empty:
        parts.append(_section("subgroups", _subgroup_body(found), "subgroups"))
    if not found.comparison.empty:
        caption = (
            "PSIS-LOO (ArviZ) of each unweighted fit on the same persons: elpd_loo (higher "
            "predicts better) and its SE; elpd_diff: against the best model of its outcome and "
            "covariate set, with the SE of the pointwise differences (|diff| under 2 SE: no "
            "clear winner); Pareto k above 0.7 makes that person's elpd unreliable. BKMR's "
            "is from each person's leave-one-out Gaussian conditional (h integrated out)"
        )
        parts.append(
            _section(
                "model comparison",
                f"<p class=caption>{html.escape(caption)}</p>"
                + report.table_html(found.comparison),
                "model-comparison",
            )
        )
    if not found.sensitivity.empty:
        parts.append(
            _section(
                "prior sensitivity",
                report.table_html(found.sensitivity),
                "sensitivity",
            )
        )
    if found.descriptives or "correlations" in found.figures:
        body = "".join(
            report.details(f"<b>{html.escape(name)}</b>", report.table_html(table), open_=True)
            for name, table in found.descriptives.items()
        )
        if "correlations" in found.figures:
            body += report.image("correlations", found.figures["correlations"])
        parts.append(_section("cohort", body, "cohort"))
    ok = status.eq(STATUS_OK).tolist()
    parts.append(
        _section(
            "convergence",
            report.table_html(convergence, bad_rows=[not x for x in ok]),
            "convergence",
        )
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(study: Study) -> StudyResults:
    """report.html, convergence.csv, results.csv, sensitivity.csv, model_comparison.csv,
    subgroups.csv and tables.xlsx (those and the cohort's tables, a sheet each) in the study
    folder, and the subgroup forest plots under figures/, each written whole."""
    found = collect(study)
    folder = study.folder
    write_file_atomically(folder / "report.html", render(study, found))
    tables = {"convergence": found.convergence, "results": found.results}
    tables |= {"sensitivity": found.sensitivity, "model_comparison": found.comparison}
    tables |= {"subgroups": found.subgroups}
    for name, table in tables.items():
        write_file_atomically(folder / f"{name}.csv", table.to_csv(index=False))
    written = set()
    for name, (png, svg) in found.subgroup_figures.items():
        for suffix, content in ((".png", png), (".svg", svg)):
            path = folder / "figures" / f"subgroups_{name}{suffix}"
            write_file_atomically(path, content)
            written.add(path)
    for stale in set((folder / "figures").glob("subgroups_*")) - written:
        stale.unlink()  # a figure of an earlier report this one no longer has
    book = io.BytesIO()
    with pd.ExcelWriter(book, engine="openpyxl") as writer:
        for name, table in {**tables, **found.descriptives}.items():
            table.to_excel(writer, sheet_name=name[:31], index=False)
    write_file_atomically(folder / "tables.xlsx", book.getvalue())
    return found
