"""Figures from tidy tables: each function takes data and returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


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
    ax.errorbar(est, y, xerr=[est - low, high - est], fmt="o", color="black", capsize=3)
    ratio = (effects["measure"] == "odds ratio").all()
    ax.axvline(1.0 if ratio else 0.0, color="grey", linestyle="--")
    if ratio:
        ax.set_xscale("log")
    ax.set_yticks(y, labels)
    prob = effects["ci_prob"].iloc[0]
    ax.set_xlabel(f"{'odds ratio' if ratio else 'beta'} ({prob:.0%} credible interval)")
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
            yerr=[part["mean"] - part["lower"], part["upper"] - part["mean"]],
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
