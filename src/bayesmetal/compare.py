"""Comparing run folders: their headline tables side by side, their config differences and the
conclusions that change (a sign, an interval that excludes the null, a PIP across 0.5, the
largest weight, an h curve whose interval leaves zero).

Reads only what a run folder holds (`config.resolved.yaml` and the CSV tables), never the data
or the posterior; writes a new folder atomically, never into a run folder.

What is compared is chosen by the run's model (`HEADLINES`, its config's `model.name`; by the
tables present only for a model it does not know). Like is compared with like: each quantity is
compared on one statistic in every run (`choose_statistic`): the runs' own point estimate where
they agree on what it is (the median of an `estimate` column with `estimate_is`; the mean of an
old table's `est` ...), else the posterior mean or median that every run reports, else each
run's own, said in a note. The table's `statistic` column names the one used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bayesmetal.errors import BayesmetalError
from bayesmetal.runs import FAILURE_FILE, RUN_MARKER, atomic_folder, is_run_folder, save_figure

# the headline quantities per model, the CSV tables they are read from (BKMR's univariate.csv
# is its h curves, compared point by point in `curves`)
HEADLINES = {
    "bkmr": ("pips", "overall_risk", "univariate"),
    "bwqs": ("weights", "index_effects"),
    "glm": ("effects",),
    "qgcomp": ("psi", "weights"),
}
# every CSV table compare reads
HEADLINE_FILES = ("pips", "overall_risk", "weights", "index_effects", "effects", "psi")
HEADLINE_FILES += ("univariate",)
# config keys that do not change a result: where it was written and how it was called
IGNORED_KEYS = ("source", "output", "provenance.config_file", "provenance.overrides")
IGNORED_KEYS += ("sampler.progressbar",)
STATISTICS = ("mean", "median")  # shared statistics a quantity falls back on, in this order
ABSENT = "(absent)"
PIP_CUT = 0.5


class NotARunFolderError(BayesmetalError):
    """A path given to compare is not a completed fit run folder (or holds no tables)."""


@dataclass
class Run:
    """What compare reads of one run folder."""

    path: Path
    label: str
    config: dict[str, Any]  # config.resolved.yaml
    tables: dict[str, pd.DataFrame]  # HEADLINE_FILES present, by name
    flagged: int | None = None  # parameters diagnostics.csv flags (None: no diagnostics.csv)

    @property
    def model(self) -> str:
        return str((self.config.get("model") or {}).get("name", "?"))

    def describe(self) -> str:
        analysis = self.config.get("analysis") or {}
        table = self.config.get("table") or {}
        outcome = analysis.get("outcome") or table.get("outcome") or "?"
        n = (self.config.get("provenance") or {}).get("n", "?")
        if self.flagged is None:
            diagnostics = "no diagnostics.csv"
        elif self.flagged:
            diagnostics = f"diagnostics: {self.flagged} parameter(s) flagged"
        else:
            diagnostics = "diagnostics: all within targets"
        source = self.config.get("source") or "?"
        return f"{self.model}, {outcome}, n={n}, from {source}; {diagnostics}"


@dataclass
class Comparison:
    """The result of `compare`: every table it writes and the lines it prints."""

    runs: list[Run]
    table: pd.DataFrame  # scalar headline quantities side by side
    curves: pd.DataFrame  # BKMR h curves side by side (empty without them)
    config_diff: pd.DataFrame  # key, then one column a run
    changes: pd.DataFrame  # compared run, quantity, item, what changed
    notes: list[str] = field(default_factory=list)  # what the runs do not share

    @property
    def interval(self) -> str:
        """The runs' interval probability ('95%'; '90% / 95%' where they differ)."""
        probs = []
        for run in self.runs:
            prob = (run.config.get("summaries") or {}).get("ci_prob", 0.95)
            probs.append(f"{float(prob):.0%}")
        return " / ".join(dict.fromkeys(probs))

    def text(self) -> str:
        return "\n".join(report_lines(self))


# reading


def marker_kind(folder: Path) -> str | None:
    try:
        return str(json.loads((folder / RUN_MARKER).read_text()).get("kind"))
    except (OSError, ValueError, AttributeError):
        return None


def read_run(path: Path, label: str | None = None) -> Run:
    """A fit run folder's resolved config and headline tables; NotARunFolderError naming the
    path for anything else (a missing path, a file, a describe or comparison folder, a run
    whose summaries failed)."""
    path = Path(path)
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is a file"
        raise NotARunFolderError(f"{path} {what}; give a run folder written by fit.py")
    kind = marker_kind(path)
    if kind is not None and kind != "fit":
        raise NotARunFolderError(
            f"{path} is a {kind} folder, not a fit run folder; give a folder written by fit.py"
        )
    if not is_run_folder(path):
        raise NotARunFolderError(
            f"{path} is not a fit run folder (no {RUN_MARKER}, no idata.nc with "
            "config.resolved.yaml); give a folder written by fit.py"
        )
    config_file = path / "config.resolved.yaml"
    if not config_file.is_file():
        raise NotARunFolderError(f"{path} is not a fit run folder: no config.resolved.yaml")
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise NotARunFolderError(f"{config_file}: not readable YAML ({exc})") from None
    if not isinstance(config, dict):
        raise NotARunFolderError(f"{config_file}: not a mapping of keys")
    tables = {}
    for name in HEADLINE_FILES:
        csv = path / f"{name}.csv"
        if csv.is_file():
            tables[name] = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    if not tables:
        why = (
            f"its summaries failed (see {FAILURE_FILE}); finish them with "
            f"python scripts/fit.py --summarise {path}"
            if (path / FAILURE_FILE).is_file()
            else f"none of {', '.join(n + '.csv' for n in HEADLINE_FILES)}"
        )
        raise NotARunFolderError(f"{path} holds no headline tables to compare: {why}")
    flagged = None
    if (path / "diagnostics.csv").is_file():
        ok = pd.read_csv(path / "diagnostics.csv").get("ok")
        flagged = int((~ok.astype(str).str.lower().eq("true")).sum()) if ok is not None else None
    return Run(path, label or path.name, config, tables, flagged)


def run_labels(paths: list[Path]) -> list[str]:
    """Folder names, made unique with the parent's name (then a number) where they clash."""
    names = [Path(p).resolve().name for p in paths]
    labels = []
    for path, name in zip(paths, names, strict=True):
        label = name if names.count(name) == 1 else f"{Path(path).resolve().parent.name}/{name}"
        while label in labels:
            label = f"{label}#{len(labels) + 1}"
        labels.append(label)
    return labels


# headline quantities as rows: quantity, item, estimate, lower, upper, null, within


def _pick(table: pd.DataFrame, names: Iterable[str]) -> pd.Series:
    for name in names:
        if name in table.columns:
            return pd.to_numeric(table[name], errors="coerce")
    return pd.Series(np.nan, index=table.index)


def _rows(
    quantity: str,
    items: Iterable[str],
    table: pd.DataFrame,
    own_is: str | pd.Series = "",
    **columns: Any,
) -> pd.DataFrame:
    """One row per item: `own_estimate` (the table's point estimate; `own_is` names its
    statistic), `mean` and `median` where known, the interval, the null and `within`."""
    frame = pd.DataFrame({"quantity": quantity, "item": list(items)}, index=table.index)
    for name in ("own_estimate", "mean", "median", "lower", "upper", "null"):
        value = columns.get(name, np.nan)
        frame[name] = value if not isinstance(value, pd.Series) else value.to_numpy()
    frame["own_is"] = own_is if not isinstance(own_is, pd.Series) else own_is.to_numpy()
    for name in STATISTICS:  # the point estimate is the mean (or median) where it says so
        frame[name] = frame[name].where(frame[name].notna() | (frame["own_is"] != name))
        frame[name] = frame[name].fillna(frame["own_estimate"].where(frame["own_is"] == name))
    frame["within"] = columns.get("within", "")
    return frame.reset_index(drop=True)


def point_estimate(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The table's point estimate and which statistic it is: `estimate` with its
    `estimate_is`; the `estimate` of a GLM effects table written before it had `estimate_is`
    (the mean of beta, the median of a ratio); `est` of older tables (the mean); else `mean`,
    else `median`."""
    if "estimate" in table.columns:
        if "estimate_is" in table.columns:
            statistic = _text(table, "estimate_is")
        elif "measure" in table.columns:
            statistic = _text(table, "measure").map(
                lambda m: "mean" if m in ("", "beta") else "median"
            )
        else:
            statistic = pd.Series("estimate", index=table.index)
        return _pick(table, ["estimate"]), statistic
    for name, statistic in (("est", "mean"), ("mean", "mean"), ("median", "median")):
        if name in table.columns:
            return _pick(table, [name]), pd.Series(statistic, index=table.index)
    return pd.Series(np.nan, index=table.index), pd.Series("", index=table.index)


def _interval_rows(
    quantity: str, items: Iterable[str], table: pd.DataFrame, **columns: Any
) -> pd.DataFrame:
    """`_rows` with the table's point estimate, mean, median and interval columns."""
    own, own_is = point_estimate(table)
    picked = {
        "own_estimate": own,
        "mean": _pick(table, ["mean"]),
        "median": _pick(table, ["median"]),
        "lower": _pick(table, ["lower"]),
        "upper": _pick(table, ["upper"]),
    }
    return _rows(quantity, items, table, own_is, **picked, **columns)


def _qualified(table: pd.DataFrame, column: str, qualifier: str, template: str) -> list[str]:
    """Each row's `column`, with its `qualifier` (group, model) where it has one."""
    pairs = zip(_text(table, column), _text(table, qualifier), strict=True)
    return [name if not extra else template.format(name, extra) for name, extra in pairs]


def _text(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table.columns:
        return pd.Series("", index=table.index)
    return table[column].map(lambda value: "" if pd.isna(value) else str(value))


def _pips(pips: pd.DataFrame) -> list[pd.DataFrame]:
    """BKMR: a PIP per exposure (and per group with hierarchical selection)."""
    parts = [_rows("PIP", _text(pips, "variable"), pips, "pip", own_estimate=_pick(pips, ["pip"]))]
    if "group_pip" in pips.columns:
        groups = pips.drop_duplicates("group")
        items = _text(groups, "group")
        parts.append(_rows("group PIP", items, groups, "pip", own_estimate=groups["group_pip"]))
    return parts


def _overall_risk(risk: pd.DataFrame) -> list[pd.DataFrame]:
    """BKMR: h with every exposure at a quantile, against all at their medians."""
    items = [f"all at q{float(q):g}" for q in _pick(risk, ["quantile"])]
    return [_interval_rows("overall risk", items, risk, null=0.0)]


def _bwqs_weights(weights: pd.DataFrame) -> list[pd.DataFrame]:
    """BWQS: each weight (per index where there are two)."""
    index = _text(weights, "index")
    items = [
        e if i in ("", "w") else f"{i}: {e}"
        for i, e in zip(index, _text(weights, "exposure"), strict=True)
    ]
    return [_interval_rows("weight", items, weights, within=index)]


def _index_effects(effects: pd.DataFrame) -> list[pd.DataFrame]:
    """BWQS: b1 (per group; b1_pos and b1_neg)."""
    items = _qualified(effects, "parameter", "group", "{} [{}]")
    return [_interval_rows("index effect", items, effects, null=0.0)]


def _effects(effects: pd.DataFrame) -> list[pd.DataFrame]:
    """GLM: each term's effect, one quantity per measure (beta, odds or rate ratio)."""
    terms, fits = _text(effects, "term"), _text(effects, "fit")
    unique = not terms.duplicated().any()
    items = [t if unique or f in t else f"{f}: {t}" for f, t in zip(fits, terms, strict=True)]
    measures = _text(effects, "measure").replace("", "beta")
    parts = []
    for measure in dict.fromkeys(measures):
        chosen = np.flatnonzero(measures == measure)
        parts.append(
            _interval_rows(
                f"effect ({measure})",
                [items[i] for i in chosen],
                effects[(measures == measure).to_numpy()],
                null=1.0 if "ratio" in measure else 0.0,
            )
        )
    return parts


def _psi(psi: pd.DataFrame) -> list[pd.DataFrame]:
    """qgcomp: psi (conditional, partial sums, MSMs)."""
    items = _qualified(psi, "parameter", "model", "{} ({})")
    return [_interval_rows("psi", items, psi, null=0.0)]


def _qgcomp_weights(weights: pd.DataFrame) -> list[pd.DataFrame]:
    """qgcomp: the plug-in weights (side by side) and each exposure's beta per quantile."""
    exposures = _text(weights, "exposure")
    plugin = "weight" in weights.columns
    return [
        _rows(
            "qgcomp weight",
            exposures,
            weights,
            "plug-in" if plugin else "mean",
            own_estimate=_pick(weights, ["weight", "weight_mean"]),
            mean=_pick(weights, ["weight_mean"]),
            lower=_pick(weights, ["weight_lower"]),
            upper=_pick(weights, ["weight_upper"]),
            within=_text(weights, "side"),
        ),
        _rows(
            "qgcomp beta (per quantile)",
            exposures,
            weights,
            "mean",
            own_estimate=_pick(weights, ["beta_mean"]),
            lower=_pick(weights, ["beta_lower"]),
            upper=_pick(weights, ["beta_upper"]),
            null=0.0,
        ),
    ]


# how each model's headline tables become rows (univariate: `curves`)
READERS = {
    "bkmr": {"pips": _pips, "overall_risk": _overall_risk},
    "bwqs": {"weights": _bwqs_weights, "index_effects": _index_effects},
    "glm": {"effects": _effects},
    "qgcomp": {"psi": _psi, "weights": _qgcomp_weights},
}


def _guessed_readers(tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """For a model compare does not know: readers by the tables present (a weights table
    with a `side` column is qgcomp's)."""
    found: dict[str, Any] = {"pips": _pips, "index_effects": _index_effects}
    found |= {"effects": _effects, "psi": _psi}
    weights = tables.get("weights")
    if weights is not None:
        found["weights"] = _qgcomp_weights if "side" in weights.columns else _bwqs_weights
    return {name: reader for name, reader in found.items() if name in tables}


def headline(run: Run) -> pd.DataFrame:
    """The run's scalar headline quantities, one row each (h curves: `curves`), read as its
    model reports them (`READERS`): quantity, item, own_estimate and own_is (the table's point
    estimate and its statistic), mean, median, lower, upper, null, within."""
    readers = READERS.get(run.model) or _guessed_readers(run.tables)
    parts = []
    for name, reader in readers.items():
        if name in run.tables:
            parts += reader(run.tables[name])
    if not parts:
        return _rows("", [], pd.DataFrame())
    return pd.concat(parts, ignore_index=True)


def curves(run: Run) -> pd.DataFrame:
    """BKMR's univariate h curves: variable, point (grid index), z, concentration, estimate,
    lower, upper (empty when the run has none)."""
    table = run.tables.get("univariate")
    if table is None or "variable" not in table.columns:
        return pd.DataFrame(columns=["variable", "point", "z", "concentration"])
    rows = _interval_rows("h curve", _text(table, "variable"), table)
    out = pd.DataFrame(
        {
            "variable": _text(table, "variable"),
            "z": _pick(table, ["z"]),
            "concentration": _pick(table, ["concentration"]),
        }
    )
    for column in ("own_estimate", "own_is", "mean", "median", "lower", "upper"):
        out[column] = rows[column].to_numpy()
    out.insert(1, "point", out.groupby("variable").cumcount())
    return out


# alignment


def choose_statistic(
    frames: list[pd.DataFrame], labels: list[str], key: str = "quantity"
) -> tuple[list[pd.DataFrame], list[str]]:
    """Each run's rows with `estimate` and `statistic` set so that every quantity (`key`) is
    compared on one statistic in all the runs that have it: their own point estimate where
    they agree on which statistic it is; else the first of `STATISTICS` (mean, median) that
    every one of them reports, with a note; else each run's own, with a note that the
    comparison is not like with like."""
    out = [f.assign(estimate=f["own_estimate"], statistic=f["own_is"]) for f in frames]
    notes = []
    quantities = dict.fromkeys(q for f in out for q in f[key])
    for quantity in quantities:
        having = [
            (label, f, (f[key] == quantity).to_numpy())
            for label, f in zip(labels, out, strict=True)
            if (f[key] == quantity).any()
        ]
        own = {label: "/".join(dict.fromkeys(f.loc[m, "own_is"])) for label, f, m in having}
        if len(set(own.values())) <= 1:
            continue  # like with like already (or one run alone)
        said = ", ".join(f"{label} {what or 'unknown'}" for label, what in own.items())
        shared = next(
            (s for s in STATISTICS if all(f.loc[m, s].notna().all() for _, f, m in having)),
            None,
        )
        if shared is None:
            mixed = " / ".join(own.values())
            for _, f, m in having:
                f.loc[m, "statistic"] = mixed
            notes.append(
                f"{quantity}: the runs' estimates are different statistics ({said}) and they "
                "share no other: compared as they are, not like with like"
            )
            continue
        for _, f, m in having:
            f.loc[m, "estimate"] = f.loc[m, shared]
            f.loc[m, "statistic"] = shared
        notes.append(
            f"{quantity}: compared on the posterior {shared}, which every run reports "
            f"(their point estimates are not the same statistic: {said})"
        )
    return out, notes


def _side_by_side(
    frames: list[pd.DataFrame], labels: list[str], keys: list[str], values: list[str]
) -> pd.DataFrame:
    """Outer-join each run's rows on `keys`, its `values` columns suffixed by the run's label,
    in the order the rows first appear."""
    merged: pd.DataFrame | None = None
    shared = [c for c in ("statistic", "null", "within") if all(c in f.columns for f in frames)]
    for frame, label in zip(frames, labels, strict=True):
        part = frame[keys + values].rename(columns={v: f"{v} [{label}]" for v in values})
        merged = part if merged is None else merged.merge(part, on=keys, how="outer", sort=False)
    assert merged is not None
    if shared:
        extra = pd.concat([f[keys + shared] for f in frames]).drop_duplicates(keys)
        merged = merged.merge(extra, on=keys, how="left", sort=False)
    order = pd.concat([f[keys] for f in frames]).drop_duplicates().reset_index(drop=True)
    order["_order"] = range(len(order))
    merged = merged.merge(order, on=keys, how="left").sort_values("_order", kind="stable")
    return merged.drop(columns="_order").reset_index(drop=True)


def align(runs: list[Run]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(scalar quantities, h curves) of every run side by side, each quantity on one
    statistic in every run (`choose_statistic`, named in the `statistic` column), with the
    difference of each run's estimate from the first run's; and the notes on the statistics."""
    labels = [r.label for r in runs]
    reference = labels[0]
    found, notes = choose_statistic([headline(r) for r in runs], labels)
    table = _side_by_side(found, labels, ["quantity", "item"], ["estimate", "lower", "upper"])
    for label in labels[1:]:
        table[f"difference [{label}]"] = (
            table[f"estimate [{label}]"] - table[f"estimate [{reference}]"]
        )
    found = [curves(r) for r in runs]
    if all(c.empty for c in found):
        return table, pd.DataFrame(), notes
    found = [c if not c.empty else curves_template() for c in found]
    found, curve_notes = choose_statistic([c.assign(quantity="h curve") for c in found], labels)
    found = [c.drop(columns="quantity") for c in found]
    side = _side_by_side(
        found, labels, ["variable", "point"], ["z", "concentration", "estimate", "lower", "upper"]
    )
    for label in labels[1:]:
        side[f"difference [{label}]"] = (
            side[f"estimate [{label}]"] - side[f"estimate [{reference}]"]
        )
    return table, side, notes + curve_notes


def curves_template() -> pd.DataFrame:
    columns = ["variable", "point", "z", "concentration", "own_estimate", "own_is"]
    columns += ["mean", "median", "lower", "upper"]
    return pd.DataFrame(columns=columns).astype({"point": "int64"})


# config differences


def prior_text(spec: Any) -> str:
    """A prior's YAML form as one expression: Normal(mu=0, sigma=2.5)."""
    if not isinstance(spec, Mapping) or "distribution" not in spec:
        return _value_text(spec)
    args = [f"{k}={prior_text(v)}" for k, v in spec.items() if k != "distribution"]
    return f"{spec['distribution']}({', '.join(args)})"


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys to the text of their values (lists kept whole); the resolved priors are
    named `priors.<name>` and kept whole, as one expression each."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if not prefix and key == "priors":
            continue  # the config's replacements; priors_resolved holds all of them
        if not prefix and key == "priors_resolved":
            for prior, spec in (value or {}).items():
                flat[f"priors.{prior}"] = prior_text(spec)
            continue
        if isinstance(value, Mapping) and value:
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = _value_text(value)
    return flat


def is_ignored(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in IGNORED_KEYS)


def config_diff(runs: list[Run]) -> pd.DataFrame:
    """The config keys whose value differs between any two runs (key, then one column a run;
    '(absent)' where a run has no such key)."""
    flats = [flatten(r.config) for r in runs]
    keys = sorted({k for f in flats for k in f if not is_ignored(k)})
    rows = []
    for key in keys:
        values = [f.get(key, ABSENT) for f in flats]
        if len(set(values)) > 1:
            rows.append({"key": key, **{r.label: v for r, v in zip(runs, values, strict=True)}})
    return pd.DataFrame(rows, columns=["key", *[r.label for r in runs]])


# what changed


def number(value: float) -> str:
    """A number for messages: 3 significant digits, signed where it is a difference."""
    if value is None or not np.isfinite(value):
        return "NA"
    return f"{value:.3g}"


def interval_text(estimate: float, lower: float, upper: float) -> str:
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return number(estimate)
    return f"{number(estimate)} [{number(lower)}, {number(upper)}]"


def excludes_null(lower: float, upper: float, null: float) -> bool | None:
    """Whether the interval [lower, upper] leaves out `null`; None where undefined."""
    if not (np.isfinite(lower) and np.isfinite(upper) and np.isfinite(null)):
        return None
    return bool(lower > null or upper < null)


def _sign(value: float, null: float) -> int:
    return 0 if not np.isfinite(value) else int(np.sign(value - null))


def changes(table: pd.DataFrame, curves_: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Each conclusion that differs between the first run and another: a sign (against the
    null: 0, or 1 for a ratio), an interval excluding the null, a PIP across 0.5, the largest
    weight (per index or side), an h curve whose interval excludes 0 somewhere."""
    a = labels[0]
    rows: list[dict[str, str]] = []

    def add(label: str, quantity: str, item: str, kind: str, text: str) -> None:
        rows.append(
            {"run": label, "quantity": quantity, "item": item, "change": kind, "detail": text}
        )

    for b in labels[1:]:
        for _, row in table.iterrows():
            ea, eb = row[f"estimate [{a}]"], row[f"estimate [{b}]"]
            if not (np.isfinite(ea) and np.isfinite(eb)):
                continue
            quantity, item = row["quantity"], row["item"]
            null = row.get("null", np.nan)
            la, ua = row[f"lower [{a}]"], row[f"upper [{a}]"]
            lb, ub = row[f"lower [{b}]"], row[f"upper [{b}]"]
            shown = f"{interval_text(ea, la, ua)} -> {interval_text(eb, lb, ub)}"
            if "PIP" in quantity and (ea >= PIP_CUT) != (eb >= PIP_CUT):
                way = "rises above" if eb >= PIP_CUT else "falls below"
                add(b, quantity, item, "PIP crosses 0.5", f"{way} 0.5: {shown}")
            if not np.isfinite(null):
                continue
            sa, sb = _sign(ea, null), _sign(eb, null)
            if sa and sb and sa != sb:
                add(b, quantity, item, "sign", f"sign flips around {number(null)}: {shown}")
            xa, xb = excludes_null(la, ua, null), excludes_null(lb, ub, null)
            if xa is not None and xb is not None and xa != xb:
                how = "now excludes" if xb else "no longer excludes"
                add(
                    b,
                    quantity,
                    item,
                    f"interval vs {number(null)}",
                    f"{how} {number(null)}: {shown}",
                )
        for (quantity, within), top_a, top_b in _largest(table, a, b):
            group = f" ({within})" if within not in ("", "w") else ""
            add(
                b,
                quantity,
                top_b[0],
                "largest weight",
                f"largest {quantity}{group}: {top_a[0]} ({number(top_a[1])}) -> "
                f"{top_b[0]} ({number(top_b[1])})",
            )
        if not curves_.empty:
            for variable, rows_ in curves_.groupby("variable", sort=False):
                xa = _anywhere(rows_, a)
                xb = _anywhere(rows_, b)
                if xa is None or xb is None or xa == xb:
                    continue
                how = "now excludes" if xb else "no longer excludes"
                add(
                    b,
                    "h curve",
                    str(variable),
                    "interval vs 0",
                    f"band {how} 0 somewhere on the curve (max |difference| "
                    f"{number(float(np.nanmax(np.abs(rows_[f'difference [{b}]']))))})",
                )
    return pd.DataFrame(rows, columns=["run", "quantity", "item", "change", "detail"])


def change_texts(changes: pd.DataFrame) -> list[str]:
    """Each row of a `changes` table as one phrase: 'quantity item: detail'."""
    columns = changes[["quantity", "item", "detail"]].to_numpy()
    return [f"{quantity} {item}: {detail}" for quantity, item, detail in columns]


def _largest(table: pd.DataFrame, a: str, b: str) -> list[tuple[tuple[str, str], tuple, tuple]]:
    """(quantity, within), (item, estimate) of the largest weight in run a and in run b, where
    they name different items."""
    found = []
    weights = table[table["quantity"].str.contains("weight")]
    within = weights["within"] if "within" in weights.columns else pd.Series("", weights.index)
    for key, rows in weights.groupby([weights["quantity"], within], sort=False):
        tops = []
        for label in (a, b):
            values = rows[f"estimate [{label}]"]
            if values.notna().any():
                best = values.idxmax()
                tops.append((str(rows.loc[best, "item"]), float(values[best])))
        if len(tops) == 2 and tops[0][0] != tops[1][0]:
            found.append((key, tops[0], tops[1]))
    return found


def _anywhere(rows: pd.DataFrame, label: str) -> bool | None:
    lower, upper = rows.get(f"lower [{label}]"), rows.get(f"upper [{label}]")
    if lower is None or upper is None or not (lower.notna().any() and upper.notna().any()):
        return None
    return bool(((lower > 0) | (upper < 0)).any())


# the comparison


def compare(paths: list[Path]) -> Comparison:
    """Read the run folders and compare every later run with the first."""
    if len(paths) < 2:
        raise BayesmetalError("compare needs at least two run folders")
    resolved = [Path(p).resolve() for p in paths]
    for i, path in enumerate(resolved):
        if path in resolved[:i]:
            raise BayesmetalError(f"{paths[i]} is given twice; compare different run folders")
    runs = [read_run(Path(p), label) for p, label in zip(paths, run_labels(paths), strict=True)]
    return compare_runs(runs)


def compare_runs(runs: list[Run]) -> Comparison:
    """Compare every later run with the first (runs read, or built from a run's tables)."""
    table, curves_, statistic_notes = align(runs)
    labels = [r.label for r in runs]
    notes = shared_notes(runs, table, curves_) + statistic_notes
    return Comparison(
        runs, table, curves_, config_diff(runs), changes(table, curves_, labels), notes
    )


def shared_notes(runs: list[Run], table: pd.DataFrame, curves_: pd.DataFrame) -> list[str]:
    """Notes on all the runs: convergence misses and h curves on other grids."""
    notes = []
    for run in runs:
        if run.flagged:
            notes.append(
                f"{run.label} missed its convergence targets ({run.flagged} parameter(s) "
                "flagged in diagnostics.csv): a difference may be Monte Carlo error"
            )
    if not curves_.empty:
        z_cols = [f"z [{r.label}]" for r in runs if f"z [{r.label}]" in curves_]
        if len(z_cols) > 1:
            spread = curves_[z_cols].max(axis=1) - curves_[z_cols].min(axis=1)
            if (spread > 1e-6).any():
                notes.append(
                    "the h curves' grids differ between runs (other data or exposures): "
                    "compared point by point along each grid"
                )
    return notes


def pair_notes(result: Comparison, b: str) -> tuple[list[str], bool]:
    """What the first run and run `b` do not share (another model, quantities or items only
    one of them has), and whether they share anything at all."""
    a_run = result.runs[0]
    b_run = next(r for r in result.runs if r.label == b)
    a = a_run.label
    notes = []
    if a_run.model != b_run.model:
        notes.append(
            f"{b} is another model ({b_run.model}) than {a} ({a_run.model}): only the "
            "quantities they share are compared"
        )
    table = result.table
    has_a, has_b = table[f"estimate [{a}]"].notna(), table[f"estimate [{b}]"].notna()
    for label, alone in ((a, has_a & ~has_b), (b, has_b & ~has_a)):
        if alone.any():
            notes.append(f"only in {label}: {_summarise_items(table[alone])}")
    shared = bool((has_a & has_b).any())
    curves_ = result.curves
    if not curves_.empty:
        curve_a = curves_[f"estimate [{a}]"].notna().any()
        curve_b = curves_[f"estimate [{b}]"].notna().any()
        if curve_a != curve_b:
            notes.append(f"only {a if curve_a else b} has h curves (univariate.csv)")
        shared = shared or bool(curve_a and curve_b)
    if not shared:
        notes.append(f"{a} and {b} share no headline quantity: nothing to compare")
    return notes, shared


def _summarise_items(rows: pd.DataFrame) -> str:
    parts = []
    for quantity, items in rows.groupby("quantity", sort=False)["item"]:
        listed = ", ".join(items.astype(str)[:6]) + (" ..." if len(items) > 6 else "")
        parts.append(f"{quantity} ({listed})")
    return "; ".join(parts)


# output


def report_lines(result: Comparison, max_rows: int = 40) -> list[str]:
    """What compare prints: the runs, config differences, what changed, the table."""
    runs = result.runs
    a = runs[0].label
    width = max(len(r.label) for r in runs)
    lines = [f"Comparing {len(runs)} runs against {a}:"]
    lines += [f"  {r.label:<{width}}  {r.path}  ({r.describe()})" for r in runs]
    lines += [""] + [f"note: {note}" for note in result.notes] + ([""] if result.notes else [])
    for run in runs[1:]:
        b = run.label
        lines.append(f"{a} -> {b}")
        lines.append("Config differences:")
        diff = result.config_diff
        differs = diff[diff[a] != diff[b]] if not diff.empty else diff
        if differs.empty:
            lines.append("  none")
        for _, row in differs.iterrows():
            lines.append(f"  {row['key']}: {row[a]} -> {row[b]}")
        notes, shared = pair_notes(result, b)
        lines += [f"  note: {note}" for note in notes]
        lines.append("Conclusions that change:")
        mine = result.changes[result.changes["run"] == b]
        if not shared:
            lines.append("  none: the runs share no headline quantity")
        elif mine.empty:
            lines.append(
                "  none: no shared estimate changes sign or its interval's relation to the "
                "null (0, or 1 for a ratio), no PIP crosses 0.5, no largest weight changes"
            )
        for _, row in mine.iterrows():
            lines.append(f"  - {row['quantity']} {row['item']}: {row['detail']}")
        lines.append("")
    shown = display_table(result)
    lines.append(f"Side by side (estimate [{result.interval} interval]):")
    text = shown.head(max_rows).to_string(index=False)
    lines += ["  " + line for line in text.splitlines()]
    if len(shown) > max_rows:
        lines.append(f"  ... {len(shown) - max_rows} more rows in comparison.csv")
    return lines


def display_table(result: Comparison) -> pd.DataFrame:
    """The side-by-side table with one 'estimate [lower, upper]' text column a run."""
    table = result.table
    shown = table[["quantity", "item"]].copy()
    if "statistic" in table.columns:
        shown["statistic"] = table["statistic"].fillna("")
    for run in result.runs:
        label = run.label
        shown[label] = [
            interval_text(e, lo, hi) if np.isfinite(e) else "-"
            for e, lo, hi in zip(
                table[f"estimate [{label}]"],
                table[f"lower [{label}]"],
                table[f"upper [{label}]"],
                strict=True,
            )
        ]
    return shown


def default_out(paths: list[Path]) -> Path:
    """comparisons/<A>-vs-<B>[-vs-...] beside the first run."""
    labels = [label.replace("/", "_") for label in run_labels(paths)]
    return Path(paths[0]).resolve().parent / "comparisons" / "-vs-".join(labels)


def check_out(out: Path, paths: list[Path]) -> None:
    """Refuse an --out that is one of the runs, or any fit run folder (--overwrite would
    replace it with a comparison)."""
    where = Path(out).absolute()
    for path in paths:
        if where.resolve() == Path(path).resolve():
            raise BayesmetalError(f"--out {out} is the run folder {path}; choose another --out")
    kind = marker_kind(where) if where.is_dir() else None
    if where.is_dir() and is_run_folder(where) and kind not in (None, "compare"):
        raise BayesmetalError(
            f"--out {out} is a {kind} folder; a comparison never replaces it: choose another --out"
        )
    if where.is_dir() and kind is None and is_run_folder(where):
        raise BayesmetalError(f"--out {out} is a run folder; choose another --out")


def write(result: Comparison, out: Path, overwrite: bool = False) -> list[str]:
    """Write the comparison folder atomically; the names of the files written."""
    paths = [r.path for r in result.runs]
    check_out(out, paths)
    written = []
    with atomic_folder(Path(out), overwrite=overwrite, kind="compare") as folder:
        result.table.to_csv(folder / "comparison.csv", index=False)
        written.append("comparison.csv")
        if not result.curves.empty:
            result.curves.to_csv(folder / "h_curves.csv", index=False)
            written.append("h_curves.csv")
        result.config_diff.to_csv(folder / "config_diff.csv", index=False)
        result.changes.to_csv(folder / "changes.csv", index=False)
        (folder / "changes.txt").write_text(result.text() + "\n")
        written += ["config_diff.csv", "changes.csv", "changes.txt"]
        labels = [r.label for r in result.runs]
        if not result.table.empty:
            figure = comparison_figure(result.table, labels, result.interval)
            save_figure(figure, folder / "comparison.png")
            written.append("comparison.png")
        if not result.curves.empty:
            figure = curves_figure(result.curves, labels, result.interval)
            save_figure(figure, folder / "h_curves.png")
            written.append("h_curves.png")
    return written


# figures

COLOURS = plt.get_cmap("tab10").colors


def comparison_figure(table: pd.DataFrame, labels: list[str], interval: str = "95%") -> Figure:
    """One panel a quantity: each item's estimate and interval, one colour a run, the null
    (0, 1 or PIP 0.5) dashed."""
    quantities = list(dict.fromkeys(table["quantity"]))
    sizes = [int((table["quantity"] == q).sum()) for q in quantities]
    height = sum(0.9 + 0.32 * n * max(1, len(labels) * 0.6) for n in sizes) + 0.6
    fig, axes = plt.subplots(
        len(quantities),
        1,
        figsize=(8, min(height, 60)),
        gridspec_kw={"height_ratios": [max(n, 1) * len(labels) + 2 for n in sizes]},
        squeeze=False,
    )
    step = 0.8 / max(len(labels), 1)
    for ax, quantity in zip(axes[:, 0], quantities, strict=True):
        rows = table[table["quantity"] == quantity].reset_index(drop=True)
        y = np.arange(len(rows))[::-1].astype(float)
        for k, label in enumerate(labels):
            offset = 0.4 - step / 2 - k * step
            est = rows[f"estimate [{label}]"].to_numpy(float)
            low = rows[f"lower [{label}]"].to_numpy(float)
            high = rows[f"upper [{label}]"].to_numpy(float)
            has = np.isfinite(low) & np.isfinite(high) & np.isfinite(est)
            ax.plot(est, y + offset, "o", color=COLOURS[k % 10], label=label, markersize=5)
            for yy, lo, hi in zip((y + offset)[has], low[has], high[has], strict=True):
                ax.plot([lo, hi], [yy, yy], color=COLOURS[k % 10], linewidth=1.6)
        null = rows["null"].iloc[0] if "null" in rows else np.nan
        reference = PIP_CUT if "PIP" in quantity else null
        if np.isfinite(reference):
            ax.axvline(reference, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(y, rows["item"].astype(str))
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_title(quantity, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].legend(loc="best", fontsize=8, title="run", title_fontsize=8)
    fig.suptitle(f"estimate and {interval} interval, by run", fontsize=11)
    fig.tight_layout()
    return fig


def curves_figure(curves_: pd.DataFrame, labels: list[str], interval: str = "95%") -> Figure:
    """One panel an exposure: each run's h curve (estimate and 95% band) over the
    concentration (log axis), or over z where the concentration is missing."""
    variables = list(dict.fromkeys(curves_["variable"]))
    ncol = min(3, len(variables))
    nrow = math.ceil(len(variables) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.2 * nrow), squeeze=False)
    for ax, variable in zip(axes.ravel(), variables, strict=False):
        rows = curves_[curves_["variable"] == variable]
        for k, label in enumerate(labels):
            conc = rows.get(f"concentration [{label}]")
            use_conc = conc is not None and conc.notna().all() and (conc > 0).all()
            x = conc if use_conc else rows[f"z [{label}]"]
            colour = COLOURS[k % 10]
            ax.plot(x, rows[f"estimate [{label}]"], color=colour, label=label)
            ax.fill_between(
                x, rows[f"lower [{label}]"], rows[f"upper [{label}]"], color=colour, alpha=0.15
            )
            if use_conc:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: no label clutter
            ax.set_xlabel("concentration" if use_conc else "standardised log exposure")
        ax.axhline(0, color="grey", linestyle="--", linewidth=1)
        ax.set_title(str(variable), fontsize=10)
    for ax in axes.ravel()[len(variables) :]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel(f"h ({interval} band)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig
