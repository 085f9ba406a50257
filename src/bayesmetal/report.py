"""Self-contained report.html: tables and figures (PNG embedded) of one run."""

from __future__ import annotations

import base64
import html

import pandas as pd

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
tr.bad td{background:#fde2e2} .ok{color:#17692a} .bad{color:#b00020;font-weight:bold}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0} code{background:#f5f5f5}
"""


def _table(frame: pd.DataFrame, bad_rows: pd.Series | None = None) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for i, (_, row) in enumerate(frame.iterrows()):
        flagged = bad_rows is not None and bool(bad_rows.iloc[i])
        cells = "".join(f"<td>{cell(v)}</td>" for v in row)
        body.append(f"<tr class='bad'>{cells}</tr>" if flagged else f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render(
    title: str,
    meta: dict[str, str],
    verdict: str,
    converged: bool,
    tables: dict[str, pd.DataFrame],
    diagnostics: pd.DataFrame,
    figures: dict[str, bytes],
) -> str:
    """HTML text of the report; the caller writes it."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
    ]
    parts.append(
        "<table>"
        + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in meta.items()
        )
        + "</table>"
    )
    css = "ok" if converged else "bad"
    parts.append(f"<h2>Convergence</h2><p class='{css}'>{html.escape(verdict)}</p>")
    for name, table in tables.items():
        parts.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2>{_table(table)}")
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f"<h3>{html.escape(name.replace('_', ' '))}</h3>"
            f"<img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"
        )
    parts.append(f"<h2>Diagnostics (every parameter)</h2>{_table(diagnostics, ~diagnostics['ok'])}")
    parts.append("</body></html>")
    return "\n".join(parts)
