"""Self-contained report.html of one run, leading with the answer.

The first screen holds a header line (outcome, model, n, verdict), a banner (red, naming every
failed parameter and its problem, when a convergence check failed; a green line otherwise),
and the model's headline tables and figures (`Summary.headline`), cut to their key columns and
rounded. The details follow, collapsed (`<details>`), each table with a link to its CSV beside
report.html: every table in full, the covariate coefficients, the diagnostics, the priors as a
table, the flow table and the run's settings. Numbers are rounded by column (`formatter`):
about three significant digits of the column's largest value, probabilities as 0.xx,
p-values below 0.001 as "< 0.001", counts as integers.
"""

from __future__ import annotations

import base64
import html
import math
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

STYLE = """
body{font-family:system-ui,sans-serif;margin:1em auto;max-width:1280px;padding:0 1em;color:#222}
h1{font-size:1.4em;margin:0.2em 0} h2{font-size:1.15em;margin:0.8em 0 0.3em}
p.lead{margin:0.2em 0 0.5em;font-size:1.02em} p.lead b{font-weight:600}
.banner{padding:0.45em 0.8em;border-radius:4px;margin:0.4em 0;font-size:0.92em}
.banner.ok{background:#e3f4e6;color:#17692a;border:1px solid #9fd3a9}
.banner.bad{background:#fde2e2;color:#7a0016;border:1px solid #e99;}
.banner ul{margin:0.2em 0 0 1.2em;padding:0} .banner li{margin:0;break-inside:avoid}
.banner ul.many{columns:2;column-gap:2em}
.state.ok{color:#17692a;font-weight:600} .state.bad{color:#b00020;font-weight:700}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:0.8em 1.2em;
align-items:start}
.card{margin:0} .card.wide{grid-column:1/-1} .card h3{font-size:1em;margin:0.3em 0}
p.caption{margin:0.2em 0;color:#555;font-size:0.82em}
ol.notes{margin:-0.5em 0 0.5em;padding-left:1.6em;font-size:0.8em;color:#444}
table{border-collapse:collapse;margin:0.3em 0 0.8em;font-size:0.83em}
th,td{border:1px solid #ccc;padding:2px 7px} th{background:#f3f3f3;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{text-align:left} tr.bad td{background:#fde2e2}
img{max-width:100%;height:auto;border:1px solid #eee;margin:0.3em 0}
details{margin:0.3em 0;border:1px solid #e4e4e4;border-radius:4px;padding:0.2em 0.6em}
details>summary{cursor:pointer;padding:0.15em 0} details>summary span.n{color:#666}
a.csv{font-size:0.85em;margin-left:0.6em} code{background:#f5f5f5}
"""

LONG = 30  # a table with more rows is shown only collapsed, never in the first screen
MAX_SHOWN = 1000  # rows of a table written into the page (all of them are in its CSV)
WIDE = 800  # pixels: a wider figure takes a whole row of the headline grid
BANNER_ITEMS = 8  # failed parameters listed in the banner; the rest in the diagnostics
POINT_COLUMNS = ("pip", "estimate", "est", "mean", "weight", "median")
EXTRA_COLUMNS = ("concentration", "prob_direction", "p_two_sided", "note")
GROUPED = ("estimate", "est", "mean", "median", "lower", "upper")  # one format (same scale)
PVALUE = re.compile(r"^(p|p_.*|.*_p|pvalue|p_value)$")
PROBABILITY = re.compile(r"^(pip|prob.*|.*_prob|.*probability.*)$")
SHORT_TEXT = 24  # a constant text column longer than this stays a column, not a caption


# numbers


def _finite(values: pd.Series | np.ndarray) -> np.ndarray:
    array = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce")
    array = array.to_numpy(dtype=float)
    return array[np.isfinite(array)]


def _decimals(values: np.ndarray) -> int | None:
    """Decimals that show about three significant digits of the largest value, fewer where
    every value is exact with fewer (0.25, 0.3 -> 2; counts -> 0); None for a scientific
    format (largest value below 1e-3 or from 1e6)."""
    if values.size == 0 or not np.abs(values).max() > 0:
        return 0 if values.size else 2
    top = float(np.abs(values).max())
    if top < 1e-3 or top >= 1e6:
        return None
    places = min(6, max(0, 2 - math.floor(math.log10(top))))
    for exact in range(places + 1):
        if np.allclose(values, np.round(values, exact), rtol=0, atol=1e-9 * max(1.0, top)):
            return exact
    return places


def probability_text(value: float, pvalue: bool = False) -> str:
    """0.xx; 0.00x below 0.01; '< 0.001' below that (a p-value of 0 too: draws bound it)."""
    if not np.isfinite(value):
        return ""
    if value < 0.001 and (pvalue or value > 0):
        return "< 0.001"
    return f"{value:.3f}" if value < 0.01 and value > 0 else f"{value:.2f}"


def formatter(name: str, values: pd.Series | np.ndarray) -> Callable[[Any], str]:
    """The text of one cell of column `name` (whose values decide the rounding)."""
    if PVALUE.match(name):
        return lambda v: _number(v, lambda x: probability_text(x, pvalue=True))
    if PROBABILITY.match(name):
        return lambda v: _number(v, probability_text)
    if name == "rhat":
        return lambda v: _number(v, lambda x: f"{x:.3f}")
    places = _decimals(_finite(values))
    if places is None:
        return lambda v: _number(v, lambda x: f"{x:.3g}")
    return lambda v: _number(v, lambda x: f"{x:.{places}f}")


def _number(value: Any, show: Callable[[float], str]) -> str:
    """The plain text of a cell (the caller escapes it): `show` of a finite number, '' for
    NaN and None, yes/no for booleans, text as it is."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(number):
        return "" if np.isnan(number) else str(number)
    text = show(number)
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _formatters(frame: pd.DataFrame) -> dict[str, Callable[[Any], str]]:
    """One formatter per column; the point estimate, mean, median and interval columns share
    one (so an interval is rounded like its estimate), as do X, X_lower and X_upper."""
    shows: dict[str, Callable[[Any], str]] = {}
    groups: dict[str, list[str]] = {}
    for column in frame.columns:
        name = str(column)
        if not _is_numeric(frame[column]):
            continue
        stem = re.sub(r"_(lower|upper)$", "", name)
        key = "estimate" if stem in GROUPED else stem
        groups.setdefault(key, []).append(name)
    for members in groups.values():
        values = frame[members].to_numpy(dtype=float)
        for name in members:
            shows[name] = formatter(name, values)
    return shows


# tables


def table_html(
    frame: pd.DataFrame,
    bad_rows: Sequence[bool] | None = None,
    css: str = "",
    max_rows: int = MAX_SHOWN,
    numbers: Sequence[str] = (),
) -> str:
    """A rounded HTML table; rows flagged in `bad_rows` are red; `numbers` names columns of
    numbers already written as text (aligned right like the numeric ones)."""
    shows = _formatters(frame)
    numeric = {str(c) for c in frame.columns if _is_numeric(frame[c])} | set(numbers)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for i, row in enumerate(frame.head(max_rows).itertuples(index=False)):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            name = str(column)
            text = shows[name](value) if name in shows else _number(value, str)
            kind = "num" if name in numeric else "text"
            cells.append(f"<td class='{kind}'>{html.escape(text)}</td>")
        flagged = bad_rows is not None and bool(bad_rows[i])
        body.append(f"<tr{' class=bad' if flagged else ''}>{''.join(cells)}</tr>")
    more = (
        f"<p class=caption>first {max_rows} of {len(frame)} rows; all in the CSV</p>"
        if len(frame) > max_rows
        else ""
    )
    klass = f" class='{css}'" if css else ""
    rows = "".join(body)
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}"


def _empty(column: pd.Series) -> bool:
    values = column.dropna()
    return values.empty or bool((values.astype(str).str.strip() == "").all())


def _text_constant(column: pd.Series) -> str | None:
    values = column.dropna()
    if _is_numeric(column) or values.empty or values.nunique() != 1:
        return None
    value = str(values.iloc[0])
    return value if len(value) <= SHORT_TEXT else None


@dataclass(frozen=True)
class Compact:
    """A table in its headline form: `table`, the caption's `notes`, the columns of `numbers`
    already written as text, and the `footnotes` its note column's numbers refer to."""

    table: pd.DataFrame
    notes: list[str]
    numbers: list[str]
    footnotes: list[str]


def compact(frame: pd.DataFrame) -> Compact:
    """The headline form of a table: key columns (those before the point estimate, and the
    concentration), the point estimate, the mean beside it where the point estimate is the
    median (`estimate_is`), the interval as one column, probabilities, and notes as numbered
    footnotes (each distinct note written once, under the table); columns with one short text
    in every row become notes for the caption, empty columns are left out. A table without a
    point estimate column is kept whole but for those columns."""
    notes = []
    constant = {}
    for column in frame.columns:
        value = _text_constant(frame[column]) if len(frame) > 1 else None
        if value is not None and value != "":
            constant[column] = value
    if "estimate_is" in frame.columns and frame["estimate_is"].nunique() == 1:
        notes.append(f"estimate: posterior {frame['estimate_is'].iloc[0]}")
        constant.pop("estimate_is", None)
    notes += [f"{c}: {v}" for c, v in constant.items()]
    empty = [c for c in frame.columns if _empty(frame[c])]
    frame = frame.drop(columns=empty)  # a BWQS index without groups
    point = next((c for c in POINT_COLUMNS if c in frame.columns), None)
    if point is None:
        return Compact(frame.drop(columns=list(constant)), notes, [], [])
    keys = [c for c in frame.columns[: frame.columns.get_loc(point)] if c not in constant]
    keys = [c for c in keys if c != "estimate_is"]
    shown = [*keys, *(["concentration"] if "concentration" in frame.columns else [])]
    out = frame[shown].copy()
    lower, upper = (
        (f"{point}_lower", f"{point}_upper")
        if f"{point}_lower" in frame.columns
        else ("lower", "upper")
    )
    group = [c for c in (point, "mean", lower, upper) if c in frame.columns]
    show = formatter(point, frame[group].to_numpy(dtype=float))
    out[point] = frame[point].map(show)
    written = [point]
    if point != "mean" and "mean" in frame.columns and "estimate_is" in frame.columns:
        out["mean"] = frame["mean"].map(show)
        written.append("mean")
    if lower in frame.columns and upper in frame.columns:
        level = frame["ci_prob"].iloc[0] if "ci_prob" in frame.columns else None
        title = f"{level:.0%} interval" if level is not None and np.isfinite(level) else "interval"
        out[title] = [
            f"[{show(lo)}, {show(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else ""
            for lo, hi in zip(frame[lower], frame[upper], strict=True)
        ]
        written.append(title)
    for column in EXTRA_COLUMNS[1:-1]:
        if column in frame.columns and column not in constant:
            out[column] = frame[column]
    footnotes: list[str] = []
    if "note" in frame.columns and "note" not in constant:
        marks = []
        for note in frame["note"].astype(object).where(frame["note"].notna(), ""):
            note = str(note)
            parts = [part.strip() for part in note.split("; ") if part.strip()]
            footnotes += [part for part in parts if part not in footnotes]
            marks.append(", ".join(str(footnotes.index(part) + 1) for part in parts))
        if footnotes:
            out["note"] = marks
    return Compact(out, notes, written, footnotes)


# priors


def prior_text(spec: Any, keywords: bool = False) -> str:
    """A prior in its YAML form as one expression: nested priors positional,
    Normal(mu=Normal(0, 2.5), sigma=HalfNormal(1)) with `keywords` at the top."""
    if not isinstance(spec, Mapping) or "distribution" not in spec:
        return _value_text(spec)
    args = [
        f"{k}={prior_text(v)}" if keywords else prior_text(v)
        for k, v in spec.items()
        if k != "distribution"
    ]
    return f"{spec['distribution']}({', '.join(args)})"


def _value_text(value: Any) -> str:
    if isinstance(value, list | tuple | np.ndarray):
        items = [_value_text(v) for v in value]
        if len(items) > 3 and len(set(items)) == 1:
            return f"[{items[0]} x {len(items)}]"
        return f"[{', '.join(items)}]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | np.number):
        return f"{float(value):g}"
    return str(value)


def priors_table(priors: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per prior: name, distribution, its parameters (nested priors written out)."""
    rows = []
    for name, spec in priors.items():
        params = {k: v for k, v in spec.items() if k != "distribution"}
        rows.append(
            {
                "prior": name,
                "distribution": str(spec.get("distribution", "")),
                "parameters": ", ".join(f"{k}={prior_text(v)}" for k, v in params.items()),
            }
        )
    return pd.DataFrame(rows, columns=["prior", "distribution", "parameters"])


# page parts


def _title(name: str) -> str:
    return name.replace("_", " ")


def _csv_link(name: str, csv: bool) -> str:
    return f"<a class=csv href='{html.escape(name)}.csv'>{html.escape(name)}.csv</a>" if csv else ""


def png_size(png: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from a PNG's header; None for other bytes."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return None
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def _card_class(png: bytes | None) -> str:
    """'card wide' (a whole row of the grid) for a figure wider than WIDE pixels."""
    size = png_size(png) if png is not None else None
    return "card wide" if size is not None and size[0] > WIDE else "card"


def image(name: str, png: bytes) -> str:
    """An embedded PNG with its pixel size (laid out before it decodes)."""
    size = png_size(png)
    size = f" width={size[0]} height={size[1]}" if size else ""
    data = base64.b64encode(png).decode("ascii")
    return f"<img alt='{html.escape(name)}'{size} src='data:image/png;base64,{data}'>"


def banner(verdict: str, diagnostics: pd.DataFrame) -> str:
    """Green one line when every check passed; red, naming each failed parameter and its
    problem (the first BANNER_ITEMS; the rest in the diagnostics), otherwise."""
    ok = diagnostics["ok"].astype(bool) if "ok" in diagnostics else pd.Series(dtype=bool)
    if ok.all():
        detail = html.escape(verdict.removeprefix("converged: "))
        return f"<p class='banner ok' id=verdict>&#10003; Convergence checks passed: {detail}</p>"
    bad = diagnostics[~ok]
    items = []
    for row in bad.head(BANNER_ITEMS).itertuples():
        where = f"{row.fit}/{row.parameter}" if "fit" in bad.columns else str(row.parameter)
        items.append(f"<li><b>{html.escape(where)}</b>: {html.escape(str(row.problems))}</li>")
    if len(bad) > BANNER_ITEMS:
        items.append(f"<li>and {len(bad) - BANNER_ITEMS} more (diagnostics below)</li>")
    many = " class=many" if len(items) > 4 else ""
    advice = verdict.partition(". To reach ")[2]
    advice = f"<br>To reach {html.escape(advice)}" if advice else ""
    return (
        "<div class='banner bad' id=verdict><b>&#9888; Convergence failed for "
        f"{len(bad)} of {len(diagnostics)} parameters: do not report these numbers yet.</b>"
        f"<ul{many}>{''.join(items)}</ul>{advice}</div>"
    )


def details(summary: str, body: str, open_: bool = False, anchor: str = "") -> str:
    ident = f" id='{html.escape(anchor)}'" if anchor else ""
    state = " open" if open_ else ""
    return f"<details{ident}{state}><summary>{summary}</summary>{body}</details>"


def _table_details(
    name: str,
    frame: pd.DataFrame,
    caption: str = "",
    csv: bool = True,
    open_: bool = False,
    bad_rows: Sequence[bool] | None = None,
) -> str:
    rows = f"<span class=n>({len(frame)} row{'s' if len(frame) != 1 else ''})</span>"
    summary = f"<b>{html.escape(_title(name))}</b> {rows}{_csv_link(name, csv)}"
    note = f"<p class=caption>{html.escape(caption)}</p>" if caption else ""
    return details(
        summary,
        note + table_html(frame, bad_rows),
        open_=open_ and len(frame) <= LONG,
        anchor=f"table-{name}",
    )


def _headline_card(
    name: str,
    table: pd.DataFrame | None,
    png: bytes | None,
    caption: str,
) -> str:
    parts = [f"<figure class='{_card_class(png)}' id='headline-{html.escape(name)}'>"]
    parts.append(f"<h3>{html.escape(_title(name))}</h3>")
    if table is not None:
        if len(table) > LONG:
            parts.append(
                f"<p class=caption>{len(table)} rows: in the details below and "
                f"{_csv_link(name, True)}</p>"
            )
        else:
            cut = compact(table)
            notes = [caption, *cut.notes] if caption else cut.notes
            if notes:
                parts.append(f"<p class=caption>{html.escape('; '.join(notes))}</p>")
            parts.append(table_html(cut.table, css="headline", numbers=cut.numbers))
            if cut.footnotes:
                items = "".join(f"<li>{html.escape(note)}</li>" for note in cut.footnotes)
                parts.append(f"<ol class=notes>{items}</ol>")
    if png is not None:
        parts.append(image(name, png))
    parts.append("</figure>")
    return "".join(parts)


def render(
    title: str,
    lead: Mapping[str, str],
    verdict: str,
    diagnostics: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    figures: Mapping[str, bytes],
    headline: Sequence[str] = (),
    priors: Mapping[str, Mapping[str, Any]] | None = None,
    meta: Mapping[str, str] | None = None,
    captions: Mapping[str, str] | None = None,
    csv: bool = True,
) -> str:
    """HTML text of the report; the caller writes it beside the tables' CSV files.

    `lead`: the header line's items (outcome, model, n); `headline`: the names of the tables
    and figures that answer the question (the model's `Summary.headline`; names this run lacks
    are skipped; without any, the first table and the first figure lead); `tables`: every
    table by the name of its CSV (`flow` and `covariates` have their own places); `priors`:
    the resolved priors in YAML form; `meta`: the run's settings; `captions`: a note per
    table; `csv`: whether the tables lie beside the page as `<name>.csv` (links).
    """
    captions = captions or {}
    converged = bool(diagnostics["ok"].astype(bool).all()) if "ok" in diagnostics else True
    model_tables = {k: v for k, v in tables.items() if k not in ("flow", "covariates")}
    model_figures = {k: v for k, v in figures.items() if not k.startswith("rank_")}
    lead_names = [n for n in headline if n in model_tables or n in model_figures]
    if not lead_names:
        lead_names = [*list(model_tables)[:1], *list(model_figures)[:1]]
    parts = [
        "<!doctype html><html lang=en><head><meta charset='utf-8'>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    items = [f"<b>{html.escape(k)}</b> {html.escape(str(v))}" for k, v in lead.items()]
    state = "converged" if converged else "NOT CONVERGED"
    items.append(f"<span class='state {'ok' if converged else 'bad'}'>{state}</span>")
    parts.append(f"<p class=lead>{' &middot; '.join(items)}</p>")
    parts.append(banner(verdict, diagnostics))
    parts.append("<section id=headline><div class=cards>")
    seen = set()
    for name in lead_names:
        if name in seen:
            continue
        seen.add(name)
        parts.append(
            _headline_card(
                name, model_tables.get(name), model_figures.get(name), captions.get(name, "")
            )
        )
    parts.append("</div></section>")
    others = {k: v for k, v in model_figures.items() if k not in seen}
    if others:
        parts.append("<section id=figures><h2>More figures</h2><div class=cards>")
        for name, png in others.items():
            parts.append(
                f"<figure class='{_card_class(png)}'><h3>{html.escape(_title(name))}</h3>"
                f"{image(name, png)}"
                "</figure>"
            )
        parts.append("</div></section>")
    parts.append("<section id=details><h2>Details</h2>")
    if "covariates" in tables:
        parts.append(
            _table_details(
                "covariates",
                tables["covariates"],
                captions.get("covariates", "covariate coefficients"),
                csv,
                open_=True,
            )
        )
    for name, table in model_tables.items():
        parts.append(_table_details(name, table, captions.get(name, ""), csv))
    ok = diagnostics["ok"].astype(bool).tolist() if "ok" in diagnostics else None
    parts.append(
        _table_details(
            "diagnostics",
            diagnostics,
            f"every parameter; {'all passed' if converged else 'failed rows in red'}",
            csv,
            bad_rows=[not x for x in ok] if ok is not None else None,
        )
    )
    ranks = {k: v for k, v in figures.items() if k.startswith("rank_")}
    if ranks:
        body = "".join(f"<h3>{html.escape(_title(k))}</h3>{image(k, v)}" for k, v in ranks.items())
        parts.append(details("<b>rank plots</b>", body, anchor="rank-plots"))
    if priors:
        table = priors_table(priors)
        parts.append(
            details(
                f"<b>priors</b> <span class=n>({len(table)})</span>",
                table_html(table),
                anchor="priors",
            )
        )
    if "flow" in tables:
        parts.append(_table_details("flow", tables["flow"], "who was analysed", csv))
    if meta:
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td class=text>{html.escape(str(v))}</td></tr>"
            for k, v in meta.items()
        )
        parts.append(details("<b>run</b>", f"<table>{rows}</table>", anchor="run"))
    parts.append("</section></body></html>")
    return "\n".join(parts)
