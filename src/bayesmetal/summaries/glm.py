"""GLM effect tables: beta (gaussian), odds ratio (bernoulli) or rate ratio (poisson,
negative_binomial) with credible intervals; the scale per family is `families.effect_scale`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmetal.arviz_api import InferenceData
from bayesmetal.families import effect_scale
from bayesmetal.summaries.posterior import draws, interval, prob_direction


def effects(idata: InferenceData, family: str, ci_prob: float, fit_label: str) -> pd.DataFrame:
    """One row per exposure term: estimate, interval and probability of direction.

    Where the family reports exp(beta) (odds ratio for bernoulli, rate ratio for the count
    families; `measure` names it) the estimate is the posterior median exp(beta) and the
    interval is exp of beta's interval; `sd` stays beta's. `p_two_sided` = 2 x (1 - probability
    of direction) is the Bayesian counterpart of a two-sided P (used as 'P for trend' for trend
    terms).
    """
    beta = draws(idata, "beta")
    low, high = interval(beta, ci_prob)
    pd_ = prob_direction(beta)
    scale = effect_scale(family)
    table = pd.DataFrame(
        {
            "fit": fit_label,
            "term": idata.posterior["beta"].coords["term"].to_numpy(),
            "measure": scale.measure,
            "estimate": scale.transform(np.median(beta, axis=0))
            if scale.ratio
            else beta.mean(axis=0),
            "sd": beta.std(axis=0, ddof=1),
            "lower": scale.transform(low),
            "upper": scale.transform(high),
            "prob_direction": pd_,
            "p_two_sided": 2 * (1 - pd_),
        }
    )
    table["ci_prob"] = ci_prob
    return table
