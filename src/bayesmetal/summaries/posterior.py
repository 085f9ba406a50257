"""Posterior draws as flat arrays and interval summaries (equal-tailed, explicit prob)."""

from __future__ import annotations

import numpy as np

from bayesmetal.arviz_api import InferenceData


def draws(idata: InferenceData, var: str) -> np.ndarray:
    """Draws of a variable with chains pooled: shape (samples, *variable shape)."""
    values = idata.posterior[var].to_numpy()
    return values.reshape(-1, *values.shape[2:])


def interval(samples: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed credible interval along the first axis."""
    tail = (1 - prob) / 2
    return np.quantile(samples, tail, axis=0), np.quantile(samples, 1 - tail, axis=0)


def prob_direction(samples: np.ndarray) -> np.ndarray:
    """Posterior probability of the sign that the posterior mostly has (0.5 to 1)."""
    positive = (samples > 0).mean(axis=0)
    return np.maximum(positive, 1 - positive)
