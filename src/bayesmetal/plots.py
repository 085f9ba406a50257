"""Figures from tidy tables: each function takes data and returns a matplotlib Figure.

Conventions, so that a figure can go into a paper as it is: one colour per exposure in every
figure (`exposure_colours`, by the design's order of exposures); exposure-response curves over
the concentration as measured, on a log axis, with a rug of the observed values; point
estimates with their credible intervals everywhere; effect axes span at least
+-`min_half_span` (in the outcome's units) around zero, so that noise is never magnified into
a curve (see `MIN_SPAN_SD`); every axis that shows a concentration or the outcome names its
unit (`units`: the design's exposure / outcome -> unit, 'ug' shown as 'µg').
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

# Smallest half-span of an effect axis, in outcome SDs. Cohen's "small" standardised effect is
# 0.2 SD: with +-0.25 SD a curve that fills the axis is at least a small effect, and a null
# result (a band of 1e-4) is drawn as the flat line it is, not auto-scaled into a shape.
MIN_SPAN_SD = 0.25
UNKNOWN_UNIT = "concentration as in the file"


def exposure_colours(exposures: Sequence[str]) -> dict[str, str]:
    """One colour per exposure, by position in `exposures` (the design's order), shared by
    every figure of a run: tab10, or tab20 beyond ten exposures."""
    palette = plt.get_cmap("tab10" if len(exposures) <= 10 else "tab20").colors
    return {name: mcolors.to_hex(palette[i % len(palette)]) for i, name in enumerate(exposures)}


def _colours(names: Sequence[str], colours: Mapping[str, str] | None) -> dict[str, str]:
    """`colours`, completed for names it lacks (those get the next palette colours)."""
    given = dict(colours or {})
    missing = [n for n in names if n not in given]
    spare = exposure_colours([*given, *missing])
    return given | {n: spare[n] for n in missing}


def _shade(colour: str, weight: float) -> str:
    """`colour` mixed with white (weight < 0) or black (weight > 0), |weight| in [0, 1]."""
    rgb = np.array(mcolors.to_rgb(colour))
    target = np.ones(3) if weight < 0 else np.zeros(3)
    return mcolors.to_hex(rgb + abs(weight) * (target - rgb))


def _min_span(ax: Axes, half: float, axis: str = "y") -> None:
    """Widen the axis to include [-half, half] (the data may extend it further)."""
    if half <= 0:
        return
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    limits = (min(low, -half), max(high, half))
    (ax.set_ylim if axis == "y" else ax.set_xlim)(*limits)


def _rug(ax: Axes, values: np.ndarray, colour: str) -> None:
    """Ticks at the bottom of the axes at each distinct observed value."""
    values = np.unique(values[np.isfinite(values) & (values > 0)])
    x = np.repeat(values, 3)  # one path, segments split by NaN: a small SVG
    y = np.tile([0.0, 0.045, np.nan], len(values))
    ax.plot(x, y, transform=ax.get_xaxis_transform(), color=colour, alpha=0.35, linewidth=0.5)


def _log_axis(ax: Axes, values: np.ndarray) -> None:
    """A log x axis labelled in plain numbers (0.5, 1, 2, 5, 10), at 1-2-5 steps when the
    values span at most two decades and at powers of ten beyond."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    ax.set_xscale("log")
    decades = np.log10(values.max() / values.min()) if len(values) else 3.0
    subs = (1.0, 2.0, 5.0) if decades <= 2 else (1.0,)
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def display_unit(unit: str) -> str:
    """A unit as a figure prints it: the files' ASCII 'u' for micro as 'µ' (ug/dL -> µg/dL,
    umol/L -> µmol/L); '^2' as '²'."""
    return re.sub(r"\bu(?=(g|mol|L|m)\b)", "µ", unit).replace("^2", "²")


def _exposure_label(name: str, units: Mapping[str, str] | None) -> str:
    """'Pb (µg/dL), log scale'; a name without a known unit says so."""
    unit = (units or {}).get(name)
    return f"{name} ({display_unit(unit) if unit else UNKNOWN_UNIT}), log scale"


def outcome_label(outcome: str, units: Mapping[str, str] | None = None, scale: str = "") -> str:
    """'lumbar_bmd (g/cm²)' where the outcome's unit is known; on a latent `scale` (probit)
    the outcome's unit does not apply: 'y (probit scale)'."""
    if scale:
        return f"{outcome} ({scale} scale)"
    unit = (units or {}).get(outcome)
    return f"{outcome} ({display_unit(unit)})" if unit else outcome


def _curve_columns(table: pd.DataFrame) -> tuple[str, str, str]:
    """The change from the reference point when the table has it, else h itself."""
    if "change" in table.columns:
        return "change", "change_lower", "change_upper"
    return "estimate", "lower", "upper"


def _ordinal(q: float) -> str:
    pct = round(100 * q)
    suffix = "th" if 10 <= pct % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(pct % 10, "th")
    return f"{pct}{suffix}"


def _bars(est: pd.Series, lower: pd.Series, upper: pd.Series) -> np.ndarray:
    """Error-bar lengths, (2, rows); a mean can sit a hair outside its quantile interval when
    the posterior is nearly a point mass, so lengths are clipped at zero."""
    est, lower, upper = (np.asarray(v, dtype=float) for v in (est, lower, upper))
    return np.stack([np.clip(est - lower, 0, None), np.clip(upper - est, 0, None)])


def correlation_heatmap(corr: pd.DataFrame, title: str = "") -> Figure:
    """Heatmap of a correlation matrix with the coefficients written in the cells."""
    size = 1.0 + 0.7 * len(corr)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(np.arange(len(corr)), corr.columns, rotation=45, ha="right")
    ax.set_yticks(np.arange(len(corr)), corr.index)
    for i in range(len(corr)):
        for j in range(len(corr)):
            value = corr.iat[i, j]
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                color="white" if abs(value) > 0.6 else "black",
                fontsize=9,
            )
    fig.colorbar(image, ax=ax, label="Pearson r (log exposures)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _term_colour(term: str, colours: Mapping[str, str]) -> str:
    """The colour of the longest exposure name a term starts with ('Pb Q2' -> Pb); black."""
    names = [n for n in colours if term == n or term.startswith(f"{n} ")]
    return colours[max(names, key=len)] if names else "black"


def forest(
    effects: pd.DataFrame,
    title: str = "",
    *,
    colours: Mapping[str, str] | None = None,
    outcome: str = "",
    units: Mapping[str, str] | None = None,
) -> Figure:
    """Point estimates and credible intervals, one row per fit and term (coloured by the
    exposure the term belongs to, when `colours` is given). A beta axis names the `outcome`
    and its unit (`units`) when given: 'beta: change in lumbar_bmd (g/cm²)'."""
    labels = [
        f"{f}: {t}" if f not in t else t
        for f, t in zip(effects["fit"], effects["term"], strict=True)
    ]
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.35 * len(effects)))
    y = np.arange(len(effects))[::-1]
    est, low, high = effects["estimate"], effects["lower"], effects["upper"]
    bars = _bars(est, low, high)
    for i, term in enumerate(effects["term"]):
        colour = _term_colour(str(term), colours or {})
        ax.errorbar(
            est.iloc[i],
            y[i],
            xerr=bars[:, [i]],
            fmt="o",
            color=colour,
            capsize=3,
        )
    measure = effects["measure"].iloc[0]  # one family per table: beta, odds or rate ratio
    ratio = measure != "beta"
    ax.axvline(1.0 if ratio else 0.0, color="grey", linestyle="--")
    if ratio:
        ax.set_xscale("log")
    ax.set_yticks(y, labels)
    prob = effects["ci_prob"].iloc[0]
    what = (
        f"{measure}: change in {outcome_label(outcome, units)}"
        if outcome and not ratio
        else measure
    )
    ax.set_xlabel(f"{what} ({prob:.0%} credible interval)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def weight_bars(
    weights: pd.DataFrame, title: str = "", *, colours: Mapping[str, str] | None = None
) -> Figure:
    """BWQS weights (posterior mean) with their credible intervals, one panel per index."""
    indices = list(dict.fromkeys(weights["index"]))
    palette = _colours(list(dict.fromkeys(weights["exposure"])), colours)
    fig, axes = plt.subplots(1, len(indices), figsize=(4.5 * len(indices), 3.5), squeeze=False)
    for ax, index in zip(axes[0], indices, strict=True):
        part = weights[weights["index"] == index].sort_values("mean", ascending=False)
        x = np.arange(len(part))
        ax.bar(x, part["mean"], color=[palette[e] for e in part["exposure"]])
        ax.errorbar(
            x,
            part["mean"],
            yerr=_bars(part["mean"], part["lower"], part["upper"]),
            fmt="none",
            color="black",
            capsize=3,
        )
        ax.axhline(1 / len(part), color="grey", linestyle="--", label="equal weights")
        ax.set_xticks(x, part["exposure"])
        ax.set_ylabel("weight")
        ax.set_title(f"{title} {index}".strip())
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def pip_bars(pips: pd.DataFrame, *, colours: Mapping[str, str] | None = None) -> Figure:
    """Posterior inclusion probabilities (BKMR), one bar per exposure in its colour."""
    palette = _colours(list(pips["variable"]), colours)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(pips["variable"], pips["pip"], color=[palette[v] for v in pips["variable"]])
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    for x, value in enumerate(pips["pip"]):
        ax.text(x, value + 0.02, f"{value:.2g}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("posterior inclusion probability")
    ax.set_title("posterior inclusion probabilities")
    fig.tight_layout()
    return fig


def _finish_panels(
    axes: np.ndarray,
    used: int,
    min_half_span: float,
    outcome: str,
    value: str,
    scale: str,
    others: str,
    units: Mapping[str, str] | None = None,
) -> None:
    """Hide unused panels, apply the minimum y span, and label the first column's y axes."""
    for ax in axes.ravel()[used:]:
        ax.set_visible(False)
    for ax in axes.ravel()[:used]:
        _min_span(ax, min_half_span)
    named = outcome_label(outcome, units, scale)
    what = f"change in {named}" if value == "change" else f"h: {named}"
    for row in axes:
        row[0].set_ylabel(f"{what}\nvs {others} at their medians", fontsize=9)


def univariate_panel(
    table: pd.DataFrame,
    outcome: str,
    *,
    concentrations: Mapping[str, np.ndarray] | None = None,
    units: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
    pips: Mapping[str, float] | None = None,
    min_half_span: float = 0.0,
    scale: str = "",
) -> Figure:
    """BKMR exposure-response curves, one panel per exposure, the others at their medians.

    y: the change in the outcome (its units; `scale` names a latent scale such as 'probit')
    from all exposures at their medians, posterior median and 95% band (`change` columns;
    h itself for a table without them); x: the concentration as measured (`concentration`
    column), log axis, with a rug of the observed values (`concentrations`). The axis spans
    at least +-`min_half_span`; panels share it.
    """
    names = list(dict.fromkeys(table["variable"]))
    palette = _colours(names, colours)
    value, low, high = _curve_columns(table)
    x_column = "concentration" if "concentration" in table.columns else "z"
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.5 * cols, 2.9 * rows + 0.4), squeeze=False, sharey=True
    )
    for ax, name in zip(axes.ravel(), names, strict=False):
        part = table[table["variable"] == name]
        colour = palette[name]
        x = part[x_column].to_numpy()
        ax.fill_between(x, part[low], part[high], color=colour, alpha=0.25, linewidth=0)
        ax.plot(x, part[value], color=colour, linewidth=1.8)
        ax.axhline(0, color="grey", linestyle="--", linewidth=0.8)
        if x_column == "concentration":
            _log_axis(ax, x)
            ax.set_xlabel(_exposure_label(name, units), fontsize=9)
            if concentrations is not None and name in concentrations:
                _rug(ax, np.asarray(concentrations[name], dtype=float), colour)
        else:
            ax.set_xlabel(f"{name} (standardised log)", fontsize=9)
        pip = (pips or {}).get(name)
        ax.set_title(name if pip is None else f"{name} (PIP {pip:.2g})", fontsize=10)
    _finish_panels(axes, len(names), min_half_span, outcome, value, scale, "all exposures", units)
    handles = [
        Line2D([], [], color="black", linewidth=1.8, label="posterior median"),
        Patch(color="black", alpha=0.25, label="95% interval"),
        Line2D([], [], color="black", alpha=0.5, marker="|", linestyle="", label="observed"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def bivariate_levels(
    table: pd.DataFrame,
    outcome: str = "h",
    *,
    concentrations: Mapping[str, np.ndarray] | None = None,
    units: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
    min_half_span: float = 0.0,
    scale: str = "",
) -> Figure:
    """Curves over exposure 1 with exposure 2 at its quartiles: one panel per pair.

    Lines are shades of exposure 2's colour (lighter: lower quantile), each with its 95% band;
    axes as in `univariate_panel` (change from all at their medians, concentration of exposure
    1 on a log axis with its rug, at least +-`min_half_span`).
    """
    pairs = list(dict.fromkeys(zip(table["variable1"], table["variable2"], strict=True)))
    palette = _colours(list(dict.fromkeys([*table["variable1"], *table["variable2"]])), colours)
    value, low, high = _curve_columns(table)
    x_column = "concentration1" if "concentration1" in table.columns else "z1"
    cols = min(3, len(pairs)) or 1
    rows = -(-len(pairs) // cols) or 1
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False, sharey=True
    )
    for ax, (first, second) in zip(axes.ravel(), pairs, strict=False):
        part = table[(table["variable1"] == first) & (table["variable2"] == second)]
        levels = list(part.groupby("quantile2"))
        for k, (q, level) in enumerate(levels):
            weight = np.linspace(-0.5, 0.3, len(levels))[k] if len(levels) > 1 else 0.0
            colour = _shade(palette[second], weight)
            x = level[x_column].to_numpy()
            ax.fill_between(x, level[low], level[high], color=colour, alpha=0.15, linewidth=0)
            ax.plot(x, level[value], color=colour, linewidth=1.6, label=f"{_ordinal(q)}")
        ax.axhline(0, color="grey", linestyle="--", linewidth=0.8)
        if x_column == "concentration1":
            _log_axis(ax, part[x_column].to_numpy())
            ax.set_xlabel(_exposure_label(first, units), fontsize=8)
            if concentrations is not None and first in concentrations:
                _rug(ax, np.asarray(concentrations[first], dtype=float), "black")
        else:
            ax.set_xlabel(f"{first} (standardised log)", fontsize=8)
        ax.set_title(f"{first}, with {second} at its", fontsize=9)
        ax.legend(title=f"{second} percentile", fontsize=7, title_fontsize=7, loc="best")
    _finish_panels(axes, len(pairs), min_half_span, outcome, value, scale, "all", units)
    fig.tight_layout()
    return fig


def risk_plot(
    table: pd.DataFrame,
    x: str,
    title: str,
    *,
    outcome: str = "h",
    units: Mapping[str, str] | None = None,
    min_half_span: float = 0.0,
    scale: str = "",
) -> Figure:
    """BKMR overall risk: the change in the outcome with every exposure at quantile `x` vs
    all at their medians, posterior median and 95% interval."""
    value = "estimate" if "estimate" in table.columns else "est"
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    quantiles = table[x].to_numpy()
    ax.errorbar(
        quantiles,
        table[value],
        yerr=_bars(table[value], table["lower"], table["upper"]),
        fmt="o",
        color="black",
        capsize=3,
    )
    ax.axhline(0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xticks(quantiles, [_ordinal(q) for q in quantiles], fontsize=8)
    ax.set_xlabel("every exposure at its percentile")
    named = outcome_label(outcome, units, scale)
    ax.set_ylabel(f"change in {named}\nvs all at their medians", fontsize=9)
    _min_span(ax, min_half_span)
    ax.set_title(f"{title}\nposterior median and 95% interval", fontsize=10)
    fig.tight_layout()
    return fig


MARKERS = ("o", "s", "^", "D", "v")


def single_var_risk_plot(
    table: pd.DataFrame,
    *,
    outcome: str = "h",
    units: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
    min_half_span: float = 0.0,
    scale: str = "",
) -> Figure:
    """Change in the outcome when one exposure moves from its 25th to its 75th percentile,
    the others at three quantiles (marker): posterior median and 95% interval, one row and
    colour per exposure."""
    value = "estimate" if "estimate" in table.columns else "est"
    names = list(dict.fromkeys(table["variable"]))
    palette = _colours(names, colours)
    levels = sorted(table["q_fixed"].unique())
    fig, ax = plt.subplots(figsize=(5.5, 1.0 + 0.5 * len(names)))
    offsets = np.linspace(-0.22, 0.22, len(levels)) if len(levels) > 1 else [0.0]
    for k, q in enumerate(levels):
        part = table[table["q_fixed"] == q].set_index("variable").loc[names]
        y = np.arange(len(names))[::-1] + offsets[k]
        bars = _bars(part[value], part["lower"], part["upper"])
        for i, name in enumerate(names):
            ax.errorbar(
                part[value].iloc[i],
                y[i],
                xerr=bars[:, [i]],
                fmt=MARKERS[k % len(MARKERS)],
                color=palette[name],
                markersize=4,
                capsize=2,
            )
    ax.axvline(0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(np.arange(len(names))[::-1], names)
    _min_span(ax, min_half_span, axis="x")
    named = outcome_label(outcome, units, scale)
    ax.set_xlabel(f"change in {named}, exposure from its 25th to 75th percentile", fontsize=9)
    handles = [
        Line2D([], [], color="grey", marker=MARKERS[k % len(MARKERS)], linestyle="")
        for k in range(len(levels))
    ]
    fig.legend(
        handles,
        [f"others at {_ordinal(q)}" for q in levels],
        fontsize=7,
        loc="lower center",
        ncol=len(levels),
        frameon=False,
    )
    ax.set_title("posterior median and 95% interval", fontsize=9)
    fig.tight_layout(rect=(0, 0.35 / fig.get_figheight(), 1, 1))
    return fig


def subgroup_forest(
    table: pd.DataFrame,
    title: str = "",
    *,
    colours: Mapping[str, str] | None = None,
    scale: str = "per unit of log concentration",
) -> Figure:
    """A subgroup forest plot: one panel per exposure, one row per stratum (the whole sample
    first, then each modifier's levels under its name), point estimates with their credible
    intervals, and each modifier's P for interaction written at its name in every panel.

    `table`: exposure, subgroup ('all' for the whole sample), level, estimate, lower, upper,
    p_interaction, measure, ci_prob (`study_subgroups.subgroup_table`, one analysis, outcome
    and weighting)."""
    exposures = list(dict.fromkeys(table["exposure"]))
    rows: list[tuple[str, str]] = []  # (subgroup, level); level "" is a modifier's name row
    for subgroup in dict.fromkeys(table["subgroup"]):
        levels = table.loc[table["subgroup"] == subgroup, "level"]
        rows += [(subgroup, "")] if subgroup != "all" else []
        rows += [(subgroup, str(level)) for level in dict.fromkeys(levels)]
    position = {row: len(rows) - 1 - i for i, row in enumerate(rows)}
    palette = _colours(exposures, colours)
    fig, axes = plt.subplots(
        1,
        len(exposures),
        figsize=(2.3 * len(exposures) + 1.8, 0.8 + 0.3 * len(rows)),
        sharey=True,
        squeeze=False,
    )
    measure = str(table["measure"].iloc[0])
    ratio = measure != "beta"
    for ax, exposure in zip(axes[0], exposures, strict=True):
        part = table[table["exposure"] == exposure]
        pairs = zip(part["subgroup"], part["level"].astype(str), strict=True)
        y = np.array([position[pair] for pair in pairs])
        bars = _bars(part["estimate"], part["lower"], part["upper"])
        ax.errorbar(part["estimate"], y, xerr=bars, fmt="o", color=palette[exposure], capsize=2)
        ax.axvline(1.0 if ratio else 0.0, color="grey", linestyle="--", linewidth=0.8)
        if ratio:
            ax.set_xscale("log")
        tests = part.dropna(subset=["p_interaction"]).drop_duplicates("subgroup")
        for subgroup, p in zip(tests["subgroup"], tests["p_interaction"], strict=True):
            ax.annotate(
                f"P-int {p:.2g}" if p >= 0.001 else "P-int < 0.001",
                (0.02, position[(subgroup, "")]),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=8,
                fontweight="bold" if p < 0.05 else "normal",
            )
        ax.set_title(exposure)
        ax.tick_params(axis="x", labelsize=8)
    labels = [level if level else f"{subgroup}:" for subgroup, level in rows]
    axes[0][0].set_yticks([position[row] for row in rows], labels)
    for tick, (_, level) in zip(axes[0][0].get_yticklabels(), rows, strict=True):
        tick.set_fontweight("normal" if level else "bold")  # a modifier's name over its levels
    axes[0][0].set_ylim(-0.7, len(rows) - 0.3)
    prob = float(table["ci_prob"].iloc[0])
    axis = f"{measure}, {scale} ({prob:.0%} credible interval)"
    fig.supxlabel(axis, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
