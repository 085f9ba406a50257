"""What `fit.py` prints: the flow table as one line, and at the end a summary that fits on one
screen (the verdict, the model's headline tables cut to the columns a reader needs, rounded,
and where everything else is). `--verbose` prints the full tables instead (`full_lines`).

The headline tables are the ones the model names in `Summary.headline`; each is cut the same
way whatever the model: its key columns (those before the point estimate: variable, term,
exposure, quantile ...), the point estimate (`pip`, `estimate`, `mean`, ...) and its interval
as one column. Columns with one value in every row (fit, measure, scale) go into the title.
"""

from __future__ import annotations

import math
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmetal.run_schema import ModelSpec
from bayesmetal.stages import Results

POINT_COLUMNS = ("pip", "estimate", "est", "mean", "weight", "median")
MAX_ROWS = 20  # a longer headline table is named with its file, not printed
SHORT_TEXT = 24  # a constant text column longer than this stays out of the title


QUANTILE_NOTE = "distinct quantile groups"  # design.make_design's note on ties (at the LOD)


def uses_quantiles(spec: ModelSpec) -> bool:
    """Whether the model reads the exposures' quantile scores: its spec declares its own
    `quantile_count` (GLM, BWQS, qgcomp); the base's default (BKMR) means it does not."""
    return type(spec).quantile_count is not ModelSpec.quantile_count


def design_notes(notes: list[str], spec: ModelSpec) -> list[str]:
    """The design's notes that concern this model: those on too few distinct quantile groups
    only where the model uses quantile scores."""
    return [n for n in notes if uses_quantiles(spec) or QUANTILE_NOTE not in n]


def flow_line(flow: pd.DataFrame) -> str:
    """'n = 9254 at start -> 1226 analysed (19 steps in flow.csv)'."""
    if flow.empty or not {"n_before", "n_after"} <= set(flow.columns):
        return f"flow: {len(flow)} steps in flow.csv"
    start, end = int(flow["n_before"].iloc[0]), int(flow["n_after"].iloc[-1])
    return f"n = {start} at start -> {end} analysed ({len(flow)} steps in flow.csv)"


def _decimals(values: np.ndarray) -> int | None:
    """Decimals showing about 3 significant digits of the column's largest value; None for
    a scientific format (values far below 1e-3 or above 1e6)."""
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0 or finite.max() == 0:
        return 2
    top = float(finite.max())
    if top < 1e-3 or top >= 1e6:
        return None
    return max(0, 2 - math.floor(math.log10(top)))


def _formatter(values: np.ndarray):
    places = _decimals(values)

    def show(v: float) -> str:
        if not np.isfinite(v):
            return ""
        text = f"{v:.3g}" if places is None else f"{v:.{places}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.000"

    return show


def _key(value: float) -> str:
    """A numeric key (quantile 0.25, k 3) as short as it can be."""
    return f"{value:.4g}" if np.isfinite(value) else ""


def _is_text(column: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def compact(table: pd.DataFrame, ci_prob: float | None = None) -> tuple[str, pd.DataFrame] | None:
    """(title note, the cut table with formatted strings), or None when the table has no point
    estimate column. The interval's level is the table's `ci_prob` column, else `ci_prob`."""
    point = next((c for c in POINT_COLUMNS if c in table.columns), None)
    if point is None:
        return None
    keys = list(table.columns[: table.columns.get_loc(point)])
    notes, kept = [], []
    for column in table.columns:
        values = table[column]
        if _is_text(values) and (values.astype(str).str.strip() == "").all():
            continue  # an empty column (a BWQS index without groups)
        if len(table) > 1 and values.nunique(dropna=False) == 1:
            value = values.iloc[0]
            if column == "estimate_is":  # which statistic the point estimate is, as report.py
                notes.append(f"estimate: posterior {value}")
            elif _is_text(values) and isinstance(value, str) and len(value) <= SHORT_TEXT:
                notes.append(f"{column}: {value}")
            continue
        if column in keys:
            kept.append(column)
    out = pd.DataFrame(index=table.index)
    for column in kept:
        values = table[column]
        out[column] = values.astype(str) if _is_text(values) else values.map(_key)
    lower, upper = (
        (f"{point}_lower", f"{point}_upper")
        if f"{point}_lower" in table.columns
        else ("lower", "upper")
    )
    has_interval = lower in table.columns and upper in table.columns
    shown = [point, lower, upper] if has_interval else [point]
    show = _formatter(table[shown].to_numpy(dtype=float).ravel())
    out[point] = table[point].map(show)
    if has_interval:
        level = table["ci_prob"].iloc[0] if "ci_prob" in table.columns else ci_prob
        name = f"{level:.0%} interval" if level is not None and np.isfinite(level) else "interval"
        out[name] = [
            f"[{show(lo)}, {show(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else ""
            for lo, hi in zip(table[lower], table[upper], strict=True)
        ]
    return ", ".join(notes), out


def headline_lines(results: Results, max_rows: int = MAX_ROWS) -> list[str]:
    """The model's headline tables, cut and rounded; a long one is named with its file."""
    lines: list[str] = []
    for name in results.headline:
        table = results.tables.get(name)
        if table is None or table.empty:  # a figure's name, or a table this run has not
            continue
        if len(table) <= max_rows and all(_is_text(table[c]) for c in table.columns):
            lines.append(f"{name}:")  # already text (side by side, compare's display)
            text = table.astype(str)
            labels = {c for c in text.columns if not text[c].str.contains("[", regex=False).any()}
            lines += ["  " + line for line in render(text, left=labels)]
            continue
        cut = compact(table, results.plan.config.summaries.ci_prob)
        if cut is None or len(table) > max_rows:
            lines.append(f"{name}: {len(table)} rows in {name}.csv")
            continue
        note, shown = cut
        lines.append(f"{name}" + (f" ({note})" if note else "") + ":")
        lines += ["  " + line for line in render(shown, left=text_columns(table))]
    return lines


def text_columns(table: pd.DataFrame) -> set[str]:
    return {c for c in table.columns if _is_text(table[c])}


def render(frame: pd.DataFrame, left: set[str]) -> list[str]:
    """A table of strings as aligned lines: the `left` columns (labels) flush left, numbers
    flush right, two spaces between columns."""
    widths = {c: max([len(str(c)), *(len(v) for v in frame[c])]) for c in frame.columns}

    def cell(column: str, value: str) -> str:
        return value.ljust(widths[column]) if column in left else value.rjust(widths[column])

    rows = [list(frame.columns), *frame.to_numpy().tolist()]
    return [
        "  ".join(cell(c, str(v)) for c, v in zip(frame.columns, row, strict=True)).rstrip()
        for row in rows
    ]


def verdict_lines(results: Results, shown: int = 5) -> list[str]:
    """The convergence verdict: one line when converged; otherwise a line per parameter
    that failed (the first `shown`) and the advice on draws, if any."""
    verdict = results.verdict
    bad = results.diagnostics[~results.diagnostics["ok"]]
    if bad.empty:
        return [verdict]
    lines = [f"NOT CONVERGED for {len(bad)} parameter(s) (every check in diagnostics.csv):"]
    lines += [f"  {r.fit}/{r.parameter}: {r.problems}" for r in bad.head(shown).itertuples()]
    if len(bad) > shown:
        lines.append(f"  ... and {len(bad) - shown} more")
    _, found, advice = verdict.partition(". To reach ")
    if found:
        width = shutil.get_terminal_size((100, 24)).columns
        lines += textwrap.wrap("To reach " + advice, width=max(width, 60), subsequent_indent="  ")
    return lines


def summary_lines(results: Results, folder: Path) -> list[str]:
    """The end summary: verdict, headline tables and where the rest is."""
    lines = verdict_lines(results)
    headline = headline_lines(results)
    if headline:
        lines += ["", *headline]
    lines += [f"{name}: {note}" for name, note in results.notes.items()]
    wall = sum(float(i.attrs.get("wall_time_s", 0)) for i in results.idatas.values())
    lines += [
        "",
        f"wrote {folder}/ (sampling took {wall:.0f} s)",
        "  report.html first; every table as CSV, figures as PNG (--verbose prints the tables)",
    ]
    return lines


def full_lines(results: Results, folder: Path) -> list[str]:
    """The verdict and every table in full (`--verbose`)."""
    lines = [results.verdict]
    for name, table in results.tables.items():
        text = table.to_string(index=False, float_format=lambda v: f"{v:.4g}")
        lines += ["", f"{name}:", *text.splitlines()]
    lines += ["", f"wrote {folder}/ (report.html, idata, tables, figures)"]
    return lines
