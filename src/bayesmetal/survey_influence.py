"""Design-based variance of posterior summaries by the Bayesian infinitesimal jackknife.

`survey_adjust` maps a pseudo-posterior to the design's spread through the Hessian of a smooth
parameter vector. Some summaries have none to map: BKMR's exposure-response contrasts are
functions of h, integrated over spike-and-slab selection indicators. For any summary g, the
derivative of its pseudo-posterior mean with respect to the weight of PSU p (all its persons'
weights scaled together) is

    psi_p = Cov_post(g, L_p),   L_p = sum over persons i of PSU p of w_i l_i,

with l_i person i's log-likelihood given every latent variable (BKMR's h at the person
included): the influence of PSU p on the estimate. The with-replacement Taylor estimator applied
to these PSU influences is the design-based variance of the estimate: Giordano & Broderick's
Bayesian infinitesimal jackknife (JMLR 2023), with the survey's PSUs as the units. For a nearly
normal posterior Cov_post(theta, L_p) = H^-1 sum_i w_i s_i(theta_hat), so the estimator is
H^-1 J H^-1, the sandwich of `survey_adjust`; tests/test_survey_influence.py checks the two
agree on a GLM.

The influences are covariances estimated from draws, and their Monte Carlo noise would add to
the variance, so the estimator multiplies the influences estimated on two independent halves of
the draws (two groups of chains) instead of squaring one estimate.

The weights are normalised to sum to n, so scaling PSU p's weights also lowers every other
person's: PSU p's total is taken as L_p - (W_p / W) L, with W_p / W its share of the weight and
L the whole weighted log-likelihood. For a GLM coefficient Cov_post(theta, L) is about 0 (the
score sums to 0 at the mode); for summaries that move with the posterior's effective sample
size (inclusion probabilities) it is not. `adjust` then rescales each
summary's draws to that variance, with the t tails of the design df when the design asks for
them (as `survey_adjust` does). The draws are scaled about their median, the point estimate
the summaries report: the variance is matched about any centre, and a spike-and-slab summary
(an exposure rarely in the model: most draws exactly 0) keeps its spike at 0, where scaling
about the mean would move it.
"""

from __future__ import annotations

import numpy as np

from bayesmetal.survey_adjust import t_scales
from bayesmetal.survey_design import SurveyWeights


def influences(values: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """(G, P): the covariance over draws of each summary (values: draws x G) with each PSU's
    weighted log-likelihood total (totals: draws x P)."""
    values = values - values.mean(axis=0)
    totals = totals - totals.mean(axis=0)
    return values.T @ totals / (len(values) - 1)


def _halves(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent halves of (chain, draw, ...) draws, flattened: the first and second
    half of the chains, or of the draws of a single chain."""
    chains = draws.shape[0]
    if chains >= 2:
        first, second = draws[: chains // 2], draws[chains // 2 :]
    else:
        middle = draws.shape[1] // 2
        first, second = draws[:, :middle], draws[:, middle:]
    return (
        first.reshape(-1, *draws.shape[2:]),
        second.reshape(-1, *draws.shape[2:]),
    )


def design_variance(
    values: np.ndarray, weighted_loglik: np.ndarray, survey: SurveyWeights
) -> np.ndarray:
    """(G,): the design-based variance of each summary's posterior mean (a cross-product
    estimate: it can come out negative when the draws are too few to see the design).

    values: (chain, draw, G) summary draws; weighted_loglik: (chain, draw, n) each person's
    log-likelihood given the draw's latent variables, times the person's survey weight."""
    n = weighted_loglik.shape[-1]
    totals = survey.psu_totals(weighted_loglik.reshape(-1, n).T).T
    share = survey.psu_totals(survey.weights)[:, 0] / survey.weights.sum()
    totals = totals - totals.sum(axis=1, keepdims=True) * share  # the normalisation's share
    totals = totals.reshape(*weighted_loglik.shape[:2], -1)
    (values_a, values_b), (totals_a, totals_b) = _halves(values), _halves(totals)
    psi_a, psi_b = influences(values_a, totals_a), influences(values_b, totals_b)
    return np.diag(survey.psu_covariance(psi_a.T, psi_b.T))


def estimable(values: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The variances with each summary whose estimate is not positive (too few draws see the
    design: a spike at 0 with a handful of excursions) given its own spread instead, and
    which those are, to be said beside them. values: (chain, draw, G)."""
    spread = values.var(axis=(0, 1), ddof=1)
    unseen = (spread > 0) & ~(variance > 0)
    return np.where(unseen, spread, variance), unseen


def scale_factors(values: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """(G,): the factor sqrt(variance / spread) by which `adjust` scales each summary's
    deviations from its median (1 for a summary with no spread)."""
    spread = values.var(axis=(0, 1), ddof=1)
    return np.sqrt(np.divide(variance, spread, out=np.ones_like(spread), where=spread > 0))


def adjust(
    values: np.ndarray, variance: np.ndarray, t_df: int | None = None, seed: int = 0
) -> np.ndarray:
    """The (chain, draw, G) summary draws rescaled about their median so that each summary's
    variance is `variance` (draws of a summary with no spread stay as they are), with the
    tails of a t on `t_df` degrees of freedom when given. Each summary is matched alone:
    contrasts must be summaries themselves, not formed from adjusted draws afterwards."""
    centre = np.median(values, axis=(0, 1))
    _, unseen = estimable(values, variance)
    if unseen.any():  # never a zero-width interval in silence
        raise ValueError(
            f"summaries {np.flatnonzero(unseen).tolist()}: the design variance estimate is not "
            "positive (too few draws to estimate the PSUs' influences); sample more draws"
        )
    factors = scale_factors(values, variance)
    scales = t_scales(values.shape[0] * values.shape[1], t_df, seed).reshape(values.shape[:2])
    return centre + (values - centre) * factors * scales[..., None]
