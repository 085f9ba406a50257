"""The BKMR Gaussian kernel K(z, z') = exp(-sum_m r_m (z_m - z'_m)^2) and the collapsed
Gaussian likelihood y - X beta ~ N(0, sigma2 (I + lambda K)), exact or low-rank (knots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg


def kernel(z1: np.ndarray, z2: np.ndarray, r: np.ndarray) -> np.ndarray:
    """exp(-sum_m r_m (z1_m - z2_m)^2) for every pair of rows; r_m = 0 drops exposure m."""
    a = z1 * np.sqrt(r)
    b = z2 * np.sqrt(r)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-np.maximum(sq, 0.0))


@dataclass
class Factor:
    """A factorised V = I + lambda K: solves and log-determinant, exact or by Woodbury."""

    solve: object  # callable: (n,) or (n, p) -> V^-1 x
    logdet: float


def exact_factor(z: np.ndarray, r: np.ndarray, lam: float) -> Factor:
    """Cholesky of the full n x n matrix: O(n^3)."""
    v = lam * kernel(z, z, r)
    v[np.diag_indices_from(v)] += 1.0
    chol = linalg.cho_factor(v, lower=True, check_finite=False)
    logdet = 2.0 * np.log(np.diag(chol[0])).sum()
    return Factor(lambda x: linalg.cho_solve(chol, x, check_finite=False), float(logdet))


def knots_factor(z: np.ndarray, knots: np.ndarray, r: np.ndarray, lam: float) -> Factor:
    """Gaussian predictive process: K ~ K_nk K_kk^-1 K_kn, then Woodbury: O(n k^2)."""
    k_nk = kernel(z, knots, r)
    k_kk = kernel(knots, knots, r)
    k_kk[np.diag_indices_from(k_kk)] += 1e-6  # jitter: K_kk is singular when r_m = 0
    # V = I + lam U U', U = K_nk L^-T with K_kk = L L'
    l_kk = linalg.cholesky(k_kk, lower=True, check_finite=False)
    u = linalg.solve_triangular(l_kk, k_nk.T, lower=True, check_finite=False).T
    inner = lam * (u.T @ u)
    inner[np.diag_indices_from(inner)] += 1.0
    chol = linalg.cho_factor(inner, lower=True, check_finite=False)
    logdet = 2.0 * np.log(np.diag(chol[0])).sum()

    def solve(x: np.ndarray) -> np.ndarray:
        return x - lam * u @ linalg.cho_solve(chol, u.T @ x, check_finite=False)

    return Factor(solve, float(logdet))


def collapsed_loglik(resid: np.ndarray, factor: Factor, sigma_sq: float) -> float:
    """log N(resid | 0, sigma2 V) given V's factor."""
    n = resid.shape[0]
    quad = float(resid @ factor.solve(resid))
    return -0.5 * (n * np.log(2 * np.pi * sigma_sq) + factor.logdet + quad / sigma_sq)


def choose_knots(z: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k knots spread over the exposure space (k-means centres, seeded)."""
    from scipy.cluster.vq import kmeans2

    if k >= len(z):
        return z.copy()
    centres, _ = kmeans2(z, k, seed=seed, minit="++")
    return centres
