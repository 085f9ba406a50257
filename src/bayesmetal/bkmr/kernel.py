"""The BKMR Gaussian kernel K(z, z') = exp(-sum_m r_m (z_m - z'_m)^2), its predictive-process
(knots) approximation, and the algebra of V = noise I + lambda K (+ lambda_ri Z Z'): factors
(exact, or by Woodbury with knots), the collapsed likelihoods of y - X beta ~ N(0, sigma2 V) and
the Gaussian conditional of h. Written once for one parameter value at a time: the sampler calls
it thousands of times per chain, the summaries once per posterior draw.

`noise` may be one number or one per point: a survey-weighted pseudo-likelihood gives person i
the noise variance sigma2 / w_i (N(y; mu, sigma2)^w is N(y; mu, sigma2 / w) up to a constant),
so V = diag(1 / w) + lambda K. The low-rank forms then whiten: with S = diag(noise)^(-1/2),
V = S^-1 (I + (S W)(S W)') S^-1, so the unit-noise algebra serves every case.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.special import gammaln

KNOTS_JITTER = 1e-6  # added to K_kk's diagonal: K_kk is singular when some r_m = 0
Noise = float | np.ndarray  # one variance for every point, or one per point (n,)


def kernel(z1: np.ndarray, z2: np.ndarray, r: np.ndarray) -> np.ndarray:
    """exp(-sum_m r_m (z1_m - z2_m)^2) for every pair of rows; r_m = 0 drops exposure m."""
    a = z1 * np.sqrt(r)
    b = z2 * np.sqrt(r)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-np.maximum(sq, 0.0))


@dataclass
class Factor:
    """A factorised V: solves and log-determinant, exact or by Woodbury."""

    solve: Callable[[np.ndarray], np.ndarray]  # (n,) or (n, p) -> V^-1 x
    logdet: float

    def quad(self, x: np.ndarray) -> float:
        """x' V^-1 x."""
        return float(x @ self.solve(x))


def _cholesky(matrix: np.ndarray) -> tuple[tuple[np.ndarray, bool], float]:
    """Lower Cholesky factor (scipy's cho_factor form) and log-determinant of the matrix."""
    chol = linalg.cho_factor(matrix, lower=True, check_finite=False)
    return chol, float(2.0 * np.log(np.diag(chol[0])).sum())


def robust_cholesky(
    matrix: np.ndarray, jitter: float = 1e-8, max_jitter: float = 1e-2, scale: float | None = None
) -> np.ndarray:
    """Lower Cholesky factor of a covariance for drawing from it: the jitter (relative to
    `scale`, by default the mean diagonal) grows 100-fold until the factorisation succeeds, up
    to `max_jitter` (LinAlgError beyond), because a kernel matrix can be singular to working
    precision (many r_m = 0, or near-equal points)."""
    if scale is None:
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
    noise: Noise = 1.0,
) -> Factor:
    """Cholesky of the full n x n matrix V = noise I + lam K (+ lam_ri Z Z'): O(n^3)."""
    v = lam * kernel(z, z, r)
    if same_group is not None:
        v += lam_ri * same_group
    v[np.diag_indices_from(v)] += noise
    chol, logdet = _cholesky(v)
    return Factor(lambda x: linalg.cho_solve(chol, x, check_finite=False), logdet)


def knot_cholesky(knots: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor L_kk of the knots' kernel (jittered: singular when r_m = 0)."""
    k_kk = kernel(knots, knots, r)
    k_kk[np.diag_indices_from(k_kk)] += KNOTS_JITTER
    return linalg.cholesky(k_kk, lower=True, check_finite=False)


def low_rank_basis(
    z: np.ndarray, knots: np.ndarray, r: np.ndarray, l_kk: np.ndarray | None = None
) -> np.ndarray:
    """U = (L_kk^-1 K_kn)', so that K ~ U U' = K_nk K_kk^-1 K_kn (the predictive-process
    kernel). U's rows are per point, so bases at new points reuse the knots' factor `l_kk`."""
    l_kk = knot_cholesky(knots, r) if l_kk is None else l_kk
    return linalg.solve_triangular(l_kk, kernel(knots, z, r), lower=True, check_finite=False).T


def predictive_w(
    basis: np.ndarray, lam: float, group_onehot: np.ndarray | None = None, lam_ri: float = 0.0
) -> np.ndarray:
    """W = [sqrt(lam) U, sqrt(lam_ri) Z], so that lam U U' (+ lam_ri Z Z') = W W' for the
    predictive-process basis U (and the random intercept's Z)."""
    w = np.sqrt(lam) * basis
    if group_onehot is not None:
        w = np.hstack([w, np.sqrt(lam_ri) * group_onehot])
    return w


def _per_point(noise: Noise) -> bool:
    return np.ndim(noise) > 0


def woodbury_factor(w: np.ndarray, noise: Noise = 1.0) -> Factor:
    """V = noise I + W W' for a thin W (n x k): Woodbury solves and determinant, O(n k^2);
    per-point noise by whitening to unit noise (module docstring)."""
    if _per_point(noise):
        scale = 1.0 / np.sqrt(noise)
        unit = woodbury_factor(w * scale[:, None])

        def whitened(x: np.ndarray) -> np.ndarray:
            s = scale if x.ndim == 1 else scale[:, None]
            return s * unit.solve(s * x)

        return Factor(whitened, unit.logdet + float(np.log(noise).sum()))
    inner = w.T @ w
    inner[np.diag_indices_from(inner)] += noise
    chol, logdet = _cholesky(inner)

    def solve(x: np.ndarray) -> np.ndarray:
        return (x - w @ linalg.cho_solve(chol, w.T @ x, check_finite=False)) / noise

    # det(noise I_n + W W') = noise^(n - k) det(noise I_k + W'W)
    return Factor(solve, logdet + (w.shape[0] - w.shape[1]) * math.log(noise))


def woodbury_inverse_diagonal(w: np.ndarray) -> np.ndarray:
    """The diagonal of (I + W W')^-1 = I - W (I + W'W)^-1 W' for a thin W (n x k), O(n k^2):
    what each point's leave-one-out Gaussian conditional needs."""
    inner = w.T @ w
    inner[np.diag_indices_from(inner)] += 1.0
    lower = linalg.cholesky(inner, lower=True, check_finite=False)
    t = linalg.solve_triangular(lower, w.T, lower=True, check_finite=False)
    return 1.0 - np.einsum("kn,kn->n", t, t)


def knots_factor(
    z: np.ndarray,
    knots: np.ndarray,
    r: np.ndarray,
    lam: float,
    group_onehot: np.ndarray | None = None,
    lam_ri: float = 0.0,
    noise: Noise = 1.0,
) -> Factor:
    """Gaussian predictive process on `knots`: V = noise I + W W' (see `predictive_w`)."""
    basis = low_rank_basis(z, knots, r)
    return woodbury_factor(predictive_w(basis, lam, group_onehot, lam_ri), noise)


def gaussian_loglik(resid: np.ndarray, factor: Factor, sigma_sq: float = 1.0) -> float:
    """log N(resid | 0, sigma2 V) given V's factor (h integrated out; the probit model's
    latent scale has sigma2 = 1)."""
    n = resid.shape[0]
    return -0.5 * (n * np.log(2 * np.pi * sigma_sq) + factor.logdet + factor.quad(resid) / sigma_sq)


def sigma_marginal_loglik(
    resid: np.ndarray, factor: Factor, alpha: float, beta: float, count: float | None = None
) -> float:
    """log p(resid | V) with sigma2 ~ InverseGamma(alpha, beta) integrated out: a
    multivariate t with 2 alpha degrees of freedom and scale (beta / alpha) V. `count` is the
    power of 1 / sigma the likelihood carries over 2, n by default; a weighted
    pseudo-likelihood's is the sum of the weights (module docstring: its V-form misses
    sigma^-(sum w - n))."""
    n = resid.shape[0] if count is None else count
    shape = alpha + n / 2
    const = gammaln(shape) - gammaln(alpha) + alpha * np.log(beta) - 0.5 * n * np.log(2 * np.pi)
    return const - 0.5 * factor.logdet - shape * np.log(beta + factor.quad(resid) / 2)


def gaussian_conditional(
    factor: Factor,
    cross: np.ndarray,
    prior: np.ndarray,
    target: np.ndarray,
    lam: float,
    sigma_sq: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of f given t when Var(t) = sigma2 V, Cov(t, f) = sigma2 lam C
    (`cross`, n x G) and Var(f) = sigma2 lam P (`prior`): N(lam C' V^-1 t, sigma2 lam (P -
    lam C' V^-1 C)). f is h at some points (C = K_ng, P = K_gg), or the coefficients a of the
    predictive process h = U a (C = U_n, P = I: O(n k^2) whatever the number of points)."""
    vinv_cross = factor.solve(cross)
    mean = lam * vinv_cross.T @ target
    cov = sigma_sq * lam * (prior - lam * cross.T @ vinv_cross)
    return mean, cov


def coefficient_conditional(
    k_kn: np.ndarray,
    l_kk: np.ndarray,
    target: np.ndarray,
    lam: float,
    sigma_sq: float,
    group_onehot: np.ndarray | None = None,
    lam_ri: float = 0.0,
    noise: Noise = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The predictive process's h(z) = K(z, knots) c given its target t: c ~ N(m, B B').

    Var(t) = sigma2 V, V = noise I + lam U U' (+ lam_ri Z Z'), U = (L_kk^-1 K_kn)'; h = U a with
    a ~ N(0, sigma2 lam I), so c = L_kk^-T a. With W = [sqrt(lam_ri) Z, sqrt(lam) U] and
    (a, u) scaled to b ~ N(0, sigma2 I), b | t ~ N(S^-1 W' t, sigma2 noise S^-1),
    S = noise I + W'W = C C' (Cholesky): all in k (+ groups) dimensions, O(n k^2) once. The
    coefficients come last in b, so the block C_aa of C gives their factor: Var(a-part of
    b) = sigma2 noise C_aa^-T C_aa^-1. h at G new points is then N(K_gk m, (K_gk B)(K_gk
    B)'): one k-dimensional normal per draw, whatever G, and no G x G factorisation.
    Per-point noise whitens t, K_kn's columns and Z's rows first (module docstring).
    """
    if _per_point(noise):
        scale = 1.0 / np.sqrt(noise)
        onehot = None if group_onehot is None else group_onehot * scale[:, None]
        return coefficient_conditional(
            k_kn * scale, l_kk, target * scale, lam, sigma_sq, onehot, lam_ri
        )
    k = len(l_kk)

    def l_inv(x: np.ndarray) -> np.ndarray:
        return linalg.solve_triangular(l_kk, x, lower=True, check_finite=False)

    gram = l_inv(l_inv(k_kn @ k_kn.T).T)  # U'U = L^-1 K_kn K_nk L^-T
    inner = lam * 0.5 * (gram + gram.T)
    rhs = np.sqrt(lam) * l_inv(k_kn @ target)
    if group_onehot is not None:
        cross = np.sqrt(lam * lam_ri) * l_inv(k_kn @ group_onehot)  # (k, groups)
        inner = np.block([[lam_ri * group_onehot.T @ group_onehot, cross.T], [cross, inner]])
        rhs = np.concatenate([np.sqrt(lam_ri) * group_onehot.T @ target, rhs])
    inner[np.diag_indices_from(inner)] += noise
    chol = linalg.cholesky(inner, lower=True, check_finite=False)
    b_mean = linalg.cho_solve((chol, True), rhs, check_finite=False)[-k:]
    mean = np.sqrt(lam) * linalg.solve_triangular(
        l_kk, b_mean, lower=True, trans="T", check_finite=False
    )
    # B = sqrt(lam sigma2 noise) L_kk^-T C_aa^-T = sqrt(...) ((L_kk C_aa)^-1)'
    factor = linalg.solve_triangular(
        l_kk @ chol[-k:, -k:], np.eye(k), lower=True, check_finite=False
    ).T
    return mean, np.sqrt(lam * sigma_sq * noise) * factor


def choose_knots(z: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k knots spread over the exposure space (k-means centres, seeded)."""
    from scipy.cluster.vq import kmeans2

    if k >= len(z):
        return z.copy()
    centres, _ = kmeans2(z, k, seed=seed, minit="++")
    return centres
