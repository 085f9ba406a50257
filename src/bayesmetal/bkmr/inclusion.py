"""Rao-Blackwellised inclusion probabilities: telling a decisive PIP from a stuck move.

For a kept draw, the probability of each inclusion state of a selection unit (an exposure;
or a group, out or in with one of its members) given everything else is computed directly:
r_m is integrated over its prior by stratified prior quantiles, with no proposal involved.
Averaged over draws this estimates the PIP independently of the reversible-jump move. When an
indicator never flipped after warm-up, a conditional probability that agrees with the chains
(below 1% for a PIP of 0, above 99% for a PIP of 1) says the evidence is decisive; one that
does not says the move is stuck.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from bayesmetal.bkmr import priors as bkmr_priors
from bayesmetal.bkmr.sampler import BkmrData, ChainState

DRAWS = 6  # kept draws, evenly spaced, at which the conditional probability is computed
GRID = 8  # stratified prior quantiles of r_m
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
    quantile = bkmr_priors.quantile_function(priors["r"], "r")
    grid = np.array([quantile((g + 0.5) / GRID) for g in range(GRID)])
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
            log_in.append(np.log(pi) - np.log(len(members)) + logsumexp(values) - np.log(GRID))
        weights = np.array([log_out, *log_in])
        probabilities.append(float(np.exp(log_in[members.index(j)] - logsumexp(weights))))
    return float(np.mean(probabilities))


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
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in draws.items()}
    return {int(j): conditional_pip(data, priors, flat, int(j)) for j in stuck}
