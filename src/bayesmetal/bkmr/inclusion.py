"""Rao-Blackwellised inclusion probabilities: telling a decisive PIP from a stuck move.

For a kept draw, the probability of each inclusion state of a selection unit (an exposure;
or a group, out or in with one of its members) given everything else is computed directly:
r_m is integrated over its prior on a grid in log r spanning the prior's support (from its
1e-6 to its 1 - 1e-6 quantile, within the sampler's bounds), with no proposal involved; a grid
of prior quantiles would miss a likelihood that peaks in the prior's upper tail (r of 1-20 for
a strongly curved effect) and call a decisive inclusion stuck.
Averaged over draws this estimates the PIP independently of the reversible-jump move. When an
indicator never flipped after warm-up, a conditional probability that agrees with the chains
(below 1% for a PIP of 0, above 99% for a PIP of 1) says the evidence is decisive; one that
does not says the move is stuck. Its limit: each unit is checked given the others, so an
exposure held out while a correlated one carries its signal looks decisive even if the
chains never tried the swap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from bayesmetal.bkmr import priors as bkmr_priors
from bayesmetal.bkmr.sampler import LOG_BOUND, BkmrData, ChainState

DRAWS = 4  # kept draws, evenly spaced, at which the conditional probability is computed
GRID_STEP = 0.5  # spacing of the log-r grid
DECISIVE = 0.01  # a never-flipped PIP of 0 (1) is decisive if this is below 1% (above 99%)


def _loglik(state: ChainState, r: np.ndarray) -> float:
    factor = state.try_factor(r, state.lam)
    return -np.inf if factor is None else state.loglik(factor)


def _unit(data: BkmrData, j: int) -> list[int]:
    """The exposures of j's selection unit, each a possible 'in' state: j alone
    component-wise, its group's members hierarchically."""
    if data.groups is None:
        return [j]
    return [int(k) for k in np.flatnonzero(data.groups == data.groups[j])]


def conditional_pip(
    data: BkmrData,
    priors: dict[str, dict[str, Any]],
    draws: dict[str, np.ndarray],
    j: int,
) -> float:
    """Mean over DRAWS kept draws of P(delta_j = 1 | everything but j's unit), with r
    integrated over its prior. `draws` holds arrays flattened over chains: (S, ...)."""
    state = ChainState(data, priors)
    grid, log_weights = prior_grid(priors)
    total = len(draws["lambda"])
    probabilities = []
    for s in np.linspace(0, total - 1, min(DRAWS, total)).astype(int):
        state.lam = float(draws["lambda"][s])
        state.beta = np.asarray(draws["beta"][s], dtype=float)
        if "lambda_ri" in draws:
            state.lam_ri = float(draws["lambda_ri"][s])
        if "ystar" in draws:
            state.ystar = np.asarray(draws["ystar"][s], dtype=float)
        r = np.asarray(draws["r"][s], dtype=float)
        pi = float(draws["pi"][s])
        members = _unit(data, j)
        base = r.copy()
        base[members] = 0.0
        log_out = np.log1p(-pi) + _loglik(state, base)
        log_in = []
        for k in members:
            values = []
            for rho in grid:
                trial = base.copy()
                trial[k] = rho
                values.append(_loglik(state, trial))
            log_in.append(np.log(pi) - np.log(len(members)) + logsumexp(log_weights + values))
        weights = np.array([log_out, *log_in])
        probabilities.append(float(np.exp(log_in[members.index(j)] - logsumexp(weights))))
    return float(np.mean(probabilities))


def prior_grid(priors: dict[str, dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Points r_i evenly spaced in log r over the prior's support and log weights
    log(p(r_i) r_i) normalised to sum to 1, so sum_i w_i f(r_i) ~ E_prior[f(r)]."""
    quantile = bkmr_priors.quantile_function(priors["r"], "r")
    logp = bkmr_priors.logp_function(priors["r"], "r")
    low, high = (np.clip(np.log(quantile(q)), -LOG_BOUND, LOG_BOUND) for q in (1e-6, 1 - 1e-6))
    log_r = np.arange(low, high + GRID_STEP, GRID_STEP)
    log_weights = np.array([logp(np.exp(v)) for v in log_r]) + log_r
    return np.exp(log_r), log_weights - logsumexp(log_weights)


def never_flipped(delta: np.ndarray) -> np.ndarray:
    """Exposures whose indicator kept one value through every chain's kept draws
    (delta shaped (chain, draw, exposure))."""
    return np.all(delta == delta[:, :1, :], axis=(0, 1))


def inclusion_check(
    data: BkmrData, priors: dict[str, dict[str, Any]], draws: dict[str, np.ndarray]
) -> dict[int, float]:
    """Conditional PIPs of the exposures whose indicator never flipped (draws (chain, draw,
    ...)); exposures that flipped need no check."""
    stuck = np.flatnonzero(never_flipped(draws["delta"]))
    flat = {k: v.reshape(v.shape[0] * v.shape[1], *v.shape[2:]) for k, v in draws.items()}
    return {int(j): conditional_pip(data, priors, flat, int(j)) for j in stuck}
