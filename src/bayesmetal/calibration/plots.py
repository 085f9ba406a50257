"""SBC figures: rank histograms with pointwise binomial bands and ECDF-difference plots with
simultaneous bands (Sailynoja et al. 2022), one panel per parameter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats  # noqa: E402

from bayesmetal.calibration.ranks import ecdf_bands, ecdf_counts, rank_bins  # noqa: E402

COLUMNS = 4


def _panels(count: int, title: str) -> tuple[Figure, list[Axes]]:
    """A grid of `count` small panels (spare ones hidden) under a title."""
    rows = -(-count // COLUMNS)
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(3.2 * COLUMNS, 2.4 * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig, flat[:count]


def histogram_figure(ranks: pd.DataFrame, bins: int, variant: str) -> Figure:
    """Binned ranks per parameter against the uniform expectation and its pointwise 99%
    binomial band (grey)."""
    groups = list(ranks.groupby("parameter", sort=False))
    fig, axes = _panels(len(groups), f"SBC rank histograms: {variant}")
    for ax, (parameter, group) in zip(axes, groups, strict=True):
        n_draws, replicates = int(group["L"].iloc[0]), len(group)
        counts, probs = rank_bins(group["rank"].to_numpy(), n_draws, bins)
        edges = np.arange(bins + 1) - 0.5
        low = stats.binom.ppf(0.005, replicates, probs)
        high = stats.binom.ppf(0.995, replicates, probs)
        ax.stairs(high, edges, baseline=low, fill=True, color="0.85")
        ax.bar(np.arange(bins), counts, width=0.9, color="tab:blue")
        ax.stairs(replicates * probs, edges, color="k", lw=0.8)
        ax.set_title(str(parameter), fontsize=9)
        ax.set_xticks([])
    fig.tight_layout()
    return fig


def ecdf_figure(ranks: pd.DataFrame, variant: str) -> Figure:
    """ECDF of the ranks minus the uniform CDF per parameter, with the simultaneous 95%
    band: a healthy sampler stays inside it everywhere with probability 0.95."""
    groups = list(ranks.groupby("parameter", sort=False))
    fig, axes = _panels(len(groups), f"SBC rank ECDF - uniform CDF: {variant}")
    for ax, (parameter, group) in zip(axes, groups, strict=True):
        n_draws, replicates = int(group["L"].iloc[0]), len(group)
        points, lower, upper = ecdf_bands(replicates, n_draws)
        ecdf = ecdf_counts(group["rank"].to_numpy(), n_draws) / replicates
        ax.fill_between(points, lower - points, upper - points, step="post", color="0.85")
        ax.step(points, ecdf - points, where="post", color="tab:blue")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(str(parameter), fontsize=9)
    fig.tight_layout()
    return fig
