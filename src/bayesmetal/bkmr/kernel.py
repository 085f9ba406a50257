"""The BKMR Gaussian kernel K(z, z') = exp(-sum_m r_m (z_m - z'_m)^2) and the collapsed
Gaussian likelihood y - X beta ~ N(0, sigma2 (I + lambda K)), exact or low-rank (knots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.special import gammaln


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


def _cholesky(matrix: np.ndarray):
    """Lower Cholesky factor (scipy's cho_factor form) and log-determinant of the matrix."""
    chol = linalg.cho_factor(matrix, lower=True, check_finite=False)
    return chol, float(2.0 * np.log(np.diag(chol[0])).sum())


def robust_cholesky(
    matrix: np.ndarray, jitter: float = 1e-8, max_jitter: float = 1e-2
) -> np.ndarray:
    """Lower Cholesky factor of a covariance for drawing from it: the jitter (relative to the
    mean diagonal) grows 100-fold until the factorisation succeeds, up to `max_jitter`
    (LinAlgError beyond), because a kernel matrix can be singular to working precision (many
    r_m = 0, or near-equal points)."""
    scale = float(np.mean(np.diag(matrix))) or 1.0
    while True:
        try:
            return np.linalg.cholesky(matrix + jitter * scale * np.eye(len(matrix)))
        except np.linalg.LinAlgError:
            if jitter >= max_jitter:
                raise
            jitter *= 100


def exact_factor(
    z: np.ndarray,
    r: np.ndarray,
    lam: float,
    same_group: np.ndarray | None = None,
    lam_ri: float = 0.0,
) -> Factor:
    """Cholesky of the full n x n matrix V = I + lam K (+ lam_ri Z Z'): O(n^3)."""
    v = lam * kernel(z, z, r)
    if same_group is not None:
        v += lam_ri * same_group
    v[np.diag_indices_from(v)] += 1.0
    chol, logdet = _cholesky(v)
    return Factor(lambda x: linalg.cho_solve(chol, x, check_finite=False), logdet)


def low_rank_basis(z: np.ndarray, knots: np.ndarray, r: np.ndarray) -> np.ndarray:
    """U with K ~ U U' = K_nk K_kk^-1 K_kn (the predictive-process kernel)."""
    k_kk = kernel(knots, knots, r)
    k_kk[np.diag_indices_from(k_kk)] += 1e-6  # jitter: K_kk is singular when r_m = 0
    l_kk = linalg.cholesky(k_kk, lower=True, check_finite=False)
    return linalg.solve_triangular(l_kk, kernel(knots, z, r), lower=True, check_finite=False).T


def knots_factor(
    z: np.ndarray,
    knots: np.ndarray,
    r: np.ndarray,
    lam: float,
    group_onehot: np.ndarray | None = None,
    lam_ri: float = 0.0,
) -> Factor:
    """Gaussian predictive process, V = I + W W' with W = [sqrt(lam) U, sqrt(lam_ri) Z];
    Woodbury solves and determinant: O(n (k + groups)^2)."""
    w = np.sqrt(lam) * low_rank_basis(z, knots, r)
    if group_onehot is not None:
        w = np.hstack([w, np.sqrt(lam_ri) * group_onehot])
    inner = w.T @ w
    inner[np.diag_indices_from(inner)] += 1.0
    chol, logdet = _cholesky(inner)

    def solve(x: np.ndarray) -> np.ndarray:
        return x - w @ linalg.cho_solve(chol, w.T @ x, check_finite=False)

    return Factor(solve, logdet)


def gaussian_loglik(resid: np.ndarray, factor: Factor, sigma_sq: float = 1.0) -> float:
    """log N(resid | 0, sigma2 V) given V's factor (h integrated out; the probit model's
    latent scale has sigma2 = 1)."""
    n = resid.shape[0]
    quad = float(resid @ factor.solve(resid))
    return -0.5 * (n * np.log(2 * np.pi * sigma_sq) + factor.logdet + quad / sigma_sq)


def sigma_marginal_loglik(resid: np.ndarray, factor: Factor, alpha: float, beta: float) -> float:
    """log p(resid | V) with sigma2 ~ InverseGamma(alpha, beta) integrated out: a
    multivariate t with 2 alpha degrees of freedom and scale (beta / alpha) V."""
    n = resid.shape[0]
    quad = float(resid @ factor.solve(resid))
    shape = alpha + n / 2
    const = gammaln(shape) - gammaln(alpha) + alpha * np.log(beta) - 0.5 * n * np.log(2 * np.pi)
    return const - 0.5 * factor.logdet - shape * np.log(beta + quad / 2)


def choose_knots(z: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k knots spread over the exposure space (k-means centres, seeded)."""
    from scipy.cluster.vq import kmeans2

    if k >= len(z):
        return z.copy()
    centres, _ = kmeans2(z, k, seed=seed, minit="++")
    return centres
