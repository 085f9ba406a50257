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
