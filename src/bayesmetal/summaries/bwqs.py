"""BWQS summaries: weights (mean, interval, probability of being largest), index effects.

The point estimate of these tables is the posterior mean (`mean`, as the BWQS papers report
weights); `median` stands beside it, and the interval is equal-tailed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmetal.arviz_api import InferenceData
from bayesmetal.families import effect_scale
from bayesmetal.summaries.posterior import draws, interval, prob_direction


def weights(idata: InferenceData, ci_prob: float) -> pd.DataFrame:
    """Each Dirichlet weight vector (w, or w_pos and w_neg) summarised per exposure."""
    rows = []
    for var in ("w", "w_pos", "w_neg"):
        if var not in idata.posterior:
            continue
        samples = draws(idata, var)
        low, high = interval(samples, ci_prob)
        largest = np.bincount(samples.argmax(axis=1), minlength=samples.shape[1]) / len(samples)
        names = idata.posterior[var].coords["exposure"].to_numpy()
        for j, name in enumerate(names):
            rows.append(
                {
                    "index": var,
                    "exposure": name,
                    "mean": samples[:, j].mean(),
                    "median": float(np.median(samples[:, j])),
                    "lower": low[j],
                    "upper": high[j],
                    "prob_largest": largest[j],
                }
            )
    table = pd.DataFrame(rows)
    table["ci_prob"] = ci_prob
    return table


def index_effects(idata: InferenceData, family: str, ci_prob: float) -> pd.DataFrame:
    """b1 (per group when hierarchical; b1_pos and b1_neg for two indices).

    Where the family reports exp(b1) (`families.effect_scale`) the table adds it as the
    posterior median and interval: odds_ratio, or_lower, or_upper for bernoulli; rate_ratio,
    rr_lower, rr_upper for poisson and negative_binomial.
    """
    scale = effect_scale(family)
    rows = []
    for var in ("b1", "b1_pos", "b1_neg"):
        if var not in idata.posterior:
            continue
        data = idata.posterior[var]
        samples = draws(idata, var)
        labels = data.coords["group"].to_numpy() if "group" in data.dims else [""]
        samples = samples.reshape(len(samples), -1)
        low, high = interval(samples, ci_prob)
        pd_ = prob_direction(samples)
        for j, label in enumerate(labels):
            row = {
                "parameter": var,
                "group": str(label),
                "mean": samples[:, j].mean(),
                "median": float(np.median(samples[:, j])),
                "lower": low[j],
                "upper": high[j],
                "prob_direction": pd_[j],
            }
            if scale.ratio:
                row |= {
                    scale.column: float(scale.transform(np.median(samples[:, j]))),
                    f"{scale.short}_lower": float(scale.transform(low[j])),
                    f"{scale.short}_upper": float(scale.transform(high[j])),
                }
            rows.append(row)
    table = pd.DataFrame(rows)
    table["ci_prob"] = ci_prob
    return table
