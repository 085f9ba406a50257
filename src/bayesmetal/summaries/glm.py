"""GLM effect tables: beta (gaussian), odds ratio (bernoulli) or rate ratio (poisson,
negative_binomial) with credible intervals; the scale per family is `families.effect_scale`."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from bayesmetal.arviz_api import InferenceData
from bayesmetal.design import split_stratum
from bayesmetal.families import effect_scale
from bayesmetal.summaries.posterior import draws, interval, prob_direction, sd

POINT_ESTIMATE = "median"  # as BKMR's tables: always inside its equal-tailed interval


def effects(idata: InferenceData, family: str, ci_prob: float, fit_label: str) -> pd.DataFrame:
    """One row per exposure term: estimate, interval and probability of direction.

    On the scale the family reports (`measure`: beta, or exp(beta) as the odds ratio for
    bernoulli and the rate ratio for the count families): `estimate` is the posterior median
    (`estimate_is` says so), which always lies inside the equal-tailed interval `lower`,
    `upper`; `mean` and `median` are the posterior mean and median of the same quantity
    (for a ratio, of exp(beta)); `sd` stays beta's. `p_two_sided` = 2 x (1 - probability
    of direction) is the Bayesian counterpart of a two-sided P (used as 'P for trend' for trend
    terms).
    """
    beta = draws(idata, "beta")
    low, high = interval(beta, ci_prob)
    pd_ = prob_direction(beta)
    scale = effect_scale(family)
    median = scale.transform(np.median(beta, axis=0))  # = median of exp(beta) (odd draws)
    table = pd.DataFrame(
        {
            "fit": fit_label,
            "term": idata.posterior["beta"].coords["term"].to_numpy(),
            "measure": scale.measure,
            "estimate": median,
            "estimate_is": POINT_ESTIMATE,
            "mean": scale.transform(beta).mean(axis=0),
            "median": median,
            "sd": sd(beta),
            "lower": scale.transform(low),
            "upper": scale.transform(high),
            "prob_direction": pd_,
            "p_two_sided": 2 * (1 - pd_),
        }
    )
    table["ci_prob"] = ci_prob
    return table


def interaction(idata: InferenceData, by: str, fit_label: str) -> pd.DataFrame:
    """The test of effect modification for each exposure term of a stratified fit (a slope
    per level of `by`): whether the slopes differ between strata.

    `chi2` is the Wald statistic of the L - 1 differences from the first stratum's slope,
    from their posterior mean and covariance (with weak priors, the frequentist Wald test of
    the interaction terms; on a survey-adjusted posterior, the design-based one), and
    `p_interaction` its chi-square tail on L - 1 df. `max_difference` is the largest posterior
    median difference between two strata's slopes (on beta's scale).
    """
    beta = draws(idata, "beta")
    names = idata.posterior["beta"].coords["term"].to_numpy()
    blocks: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        blocks.setdefault(split_stratum(str(name))[0], []).append(j)
    rows = []
    for term, columns in blocks.items():
        slopes = beta[:, columns]
        contrasts = slopes[:, 1:] - slopes[:, :1]
        mean = contrasts.mean(axis=0)
        covariance = np.atleast_2d(np.cov(contrasts, rowvar=False))
        chi2 = float(mean @ np.linalg.solve(covariance, mean))
        medians = np.median(slopes, axis=0)
        rows.append(
            {
                "fit": fit_label,
                "term": term,
                "by": by,
                "levels": len(columns),
                "df": len(columns) - 1,
                "chi2": chi2,
                "p_interaction": float(stats.chi2.sf(chi2, len(columns) - 1)),
                "max_difference": float(medians.max() - medians.min()),
            }
        )
    return pd.DataFrame(rows)
