"""GLM effect tables: beta (gaussian) or odds ratio (bernoulli) with credible intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmetal.arviz_api import InferenceData
from bayesmetal.summaries.posterior import draws, interval, prob_direction


def effects(idata: InferenceData, family: str, ci_prob: float, fit_label: str) -> pd.DataFrame:
    """One row per exposure term: estimate, interval and probability of direction.

    For bernoulli models the estimate is the posterior median odds ratio exp(beta) and the
    interval is exp of beta's interval. `p_two_sided` = 2 x (1 - probability of direction) is
    the Bayesian counterpart of a two-sided P (used as 'P for trend' for trend terms).
    """
    beta = draws(idata, "beta")
    low, high = interval(beta, ci_prob)
    pd_ = prob_direction(beta)
    odds = family == "bernoulli"
    table = pd.DataFrame(
        {
            "fit": fit_label,
            "term": idata.posterior["beta"].coords["term"].to_numpy(),
            "measure": "odds ratio" if odds else "beta",
            "estimate": np.exp(np.median(beta, axis=0)) if odds else beta.mean(axis=0),
            "sd": beta.std(axis=0, ddof=1),
            "lower": np.exp(low) if odds else low,
            "upper": np.exp(high) if odds else high,
            "prob_direction": pd_,
            "p_two_sided": 2 * (1 - pd_),
        }
    )
    table["ci_prob"] = ci_prob
    return table
