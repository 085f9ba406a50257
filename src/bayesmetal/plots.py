"""Figures from tidy tables: each function takes data and returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _bars(est: pd.Series, lower: pd.Series, upper: pd.Series) -> list[np.ndarray]:
    """Error-bar lengths; a mean can sit a hair outside its quantile interval when the
    posterior is nearly a point mass, so lengths are clipped at zero."""
    return [np.clip(est - lower, 0, None), np.clip(upper - est, 0, None)]


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


def forest(effects: pd.DataFrame, title: str = "") -> Figure:
    """Point estimates and credible intervals, one row per fit and term."""
    labels = [
        f"{f}: {t}" if f not in t else t
        for f, t in zip(effects["fit"], effects["term"], strict=True)
    ]
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.35 * len(effects)))
    y = np.arange(len(effects))[::-1]
    est, low, high = effects["estimate"], effects["lower"], effects["upper"]
    ax.errorbar(est, y, xerr=_bars(est, low, high), fmt="o", color="black", capsize=3)
    measure = effects["measure"].iloc[0]  # one family per table: beta, odds or rate ratio
    ratio = measure != "beta"
    ax.axvline(1.0 if ratio else 0.0, color="grey", linestyle="--")
    if ratio:
        ax.set_xscale("log")
    ax.set_yticks(y, labels)
    prob = effects["ci_prob"].iloc[0]
    ax.set_xlabel(f"{measure} ({prob:.0%} credible interval)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def weight_bars(weights: pd.DataFrame, title: str = "") -> Figure:
    """BWQS weights with their credible intervals, one panel per index."""
    indices = list(dict.fromkeys(weights["index"]))
    fig, axes = plt.subplots(1, len(indices), figsize=(4.5 * len(indices), 3.5), squeeze=False)
    for ax, index in zip(axes[0], indices, strict=True):
        part = weights[weights["index"] == index].sort_values("mean", ascending=False)
        x = np.arange(len(part))
        ax.bar(x, part["mean"], color="steelblue")
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


def pip_bars(pips: pd.DataFrame) -> Figure:
    """Posterior inclusion probabilities (BKMR)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(pips["variable"], pips["pip"], color="darkorange")
    ax.axhline(0.5, color="grey", linestyle="--")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("PIP")
    ax.set_title("posterior inclusion probabilities")
    fig.tight_layout()
    return fig


def univariate_panel(table: pd.DataFrame, outcome: str) -> Figure:
    """h(z_j) with its band, one panel per exposure, others at their median."""
    names = list(dict.fromkeys(table["variable"]))
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False, sharey=True
    )
    for ax, name in zip(axes.ravel(), names, strict=False):
        part = table[table["variable"] == name]
        ax.fill_between(part["z"], part["lower"], part["upper"], alpha=0.3)
        ax.plot(part["z"], part["est"])
        ax.set_title(name)
        ax.set_xlabel("standardised log exposure")
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel(f"h ({outcome} scale)")
    fig.tight_layout()
    return fig


def bivariate_levels(table: pd.DataFrame) -> Figure:
    """h over exposure 1 with exposure 2 at its quartiles: one panel per pair."""
    pairs = list(dict.fromkeys(zip(table["variable1"], table["variable2"], strict=True)))
    cols = min(3, len(pairs)) or 1
    rows = -(-len(pairs) // cols) or 1
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols, 2.7 * rows), squeeze=False, sharey=True
    )
    for ax, (first, second) in zip(axes.ravel(), pairs, strict=False):
        part = table[(table["variable1"] == first) & (table["variable2"] == second)]
        for q, level in part.groupby("quantile2"):
            ax.plot(level["z1"], level["est"], label=f"{second} at q{q:g}")
        ax.set_title(f"{first} by {second}", fontsize=9)
        ax.set_xlabel(f"{first} (standardised log)", fontsize=8)
        ax.legend(fontsize=6)
    axes[0, 0].set_ylabel("h")
    for ax in axes.ravel()[len(pairs) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def risk_plot(table: pd.DataFrame, x: str, title: str) -> Figure:
    """Estimates with intervals along a quantile axis (overall risk)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.errorbar(
        table[x],
        table["est"],
        yerr=_bars(table["est"], table["lower"], table["upper"]),
        fmt="o",
        capsize=3,
    )
    ax.axhline(0, color="grey", linestyle="--")
    ax.set_xlabel(x)
    ax.set_ylabel("change in h")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def single_var_risk_plot(table: pd.DataFrame) -> Figure:
    """Change in h for an IQR increase of each exposure, others at three quantiles."""
    fig, ax = plt.subplots(figsize=(5, 0.6 + 0.45 * table["variable"].nunique()))
    names = list(dict.fromkeys(table["variable"]))
    levels = sorted(table["q_fixed"].unique())
    for k, q in enumerate(levels):
        part = table[table["q_fixed"] == q].set_index("variable").loc[names]
        y = np.arange(len(names)) + (k - 1) * 0.2
        ax.errorbar(
            part["est"],
            y,
            xerr=_bars(part["est"], part["lower"], part["upper"]),
            fmt="o",
            capsize=2,
            label=f"others at q{q:g}",
        )
    ax.axvline(0, color="grey", linestyle="--")
    ax.set_yticks(np.arange(len(names)), names)
    ax.set_xlabel("change in h, exposure from 25th to 75th percentile")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
