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


def interaction(
    idata: InferenceData, by: str, levels: int, fit_label: str, design_df: int | None = None
) -> pd.DataFrame:
    """The test of effect modification for each exposure term of a stratified fit (`beta`
    holds each term's `levels` slopes in a row, as `Design.by_group` builds them): whether
    the slopes differ between strata.

    `wald` is the Wald statistic of the L - 1 differences from the first stratum's slope,
    d'S^-1 d from their posterior mean d and covariance S (a pseudo-inverse: `df` is S's rank,
    L - 1 unless the design cannot tell the differences apart). Unweighted, `p_interaction`
    is its chi-square tail on `df` (with weak priors, the frequentist Wald test of the
    exposure x modifier terms). On a survey posterior adjusted with t intervals on
    `design_df` degrees of freedom, whose draws are multivariate t with covariance
    design_df / (design_df - 2) times the design-based one, S is scaled back by that factor and
    `p_interaction` is the F test of wald / df on (df, design_df), as R's `regTermTest` and
    Stata's `svy: test` give (none when design_df <= 2, where t draws have no variance).
    `max_difference`: the largest minus the smallest posterior median slope (beta's scale).
    """
    beta = draws(idata, "beta")
    names = [str(n) for n in idata.posterior["beta"].coords["term"].to_numpy()]
    if beta.shape[1] % levels:
        raise ValueError(f"{fit_label}: {beta.shape[1]} slopes are not {levels} per term")
    slopes_by_term = beta.reshape(len(beta), -1, levels)
    rows = []
    for t in range(slopes_by_term.shape[1]):
        slopes = slopes_by_term[:, t, :]
        contrasts = slopes[:, 1:] - slopes[:, :1]
        mean = contrasts.mean(axis=0)
        covariance = np.atleast_2d(np.cov(contrasts, rowvar=False))
        testable = design_df is None or design_df > 2
        if design_df is not None and testable:
            covariance = covariance * (design_df - 2) / design_df
        # rank relative to the slopes' spread; a variance within rounding of the slopes' size
        # (constant draws) is none
        rounding = (np.finfo(float).eps * np.abs(slopes).max()) ** 2
        tolerance = max(1e-10 * float(np.var(slopes, axis=0).max()), 1e4 * rounding)
        rank = int(np.linalg.matrix_rank(covariance, tol=tolerance)) if testable else 0
        wald = float(mean @ np.linalg.pinv(covariance) @ mean) if rank else float("nan")
        if not rank:
            test, p = "none: the differences have no variance to test against", float("nan")
        elif design_df is None:
            test, p = "chi-square", stats.chi2.sf(wald, rank)
        else:
            test, p = f"F on {design_df} design df", stats.f.sf(wald / rank, rank, design_df)
        medians = np.median(slopes, axis=0)
        rows.append(
            {
                "fit": fit_label,
                "term": split_stratum(names[t * levels])[0],
                "by": by,
                "levels": levels,
                "df": rank,
                "wald": wald,
                "test": test,
                "p_interaction": float(p),
                "max_difference": float(medians.max() - medians.min()),
            }
        )
    return pd.DataFrame(rows)
