"""The BKMR kernel algebra against dense linear algebra: factors (exact and Woodbury, any noise,
with a random intercept), the predictive-process basis, and the Gaussian conditional of h in
both its forms (h at points, and the predictive process's coefficients mapped to points)."""

import numpy as np
import pytest

from bayesmetal.bkmr.kernel import (
    exact_factor,
    gaussian_conditional,
    kernel,
    knots_factor,
    low_rank_basis,
    predictive_w,
    robust_cholesky,
    woodbury_factor,
)
from bayesmetal.summaries import bkmr as summary

N, M, GROUPS = 30, 3, 4


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, M))
    r = np.array([0.7, 0.0, 1.3])
    onehot = (np.arange(N)[:, None] % GROUPS == np.arange(GROUPS)) * 1.0
    return rng, z, r, onehot


def _check_factor(factor, v: np.ndarray, rng: np.random.Generator) -> None:
    x = rng.standard_normal((len(v), 2))
    assert np.allclose(factor.solve(x), np.linalg.solve(v, x), rtol=1e-8, atol=1e-10)
    assert factor.quad(x[:, 0]) == pytest.approx(x[:, 0] @ np.linalg.solve(v, x[:, 0]))
    assert factor.logdet == pytest.approx(np.linalg.slogdet(v)[1], rel=1e-10)


# per-point noise: a survey-weighted pseudo-likelihood's 1 / w_i
PER_POINT = np.random.default_rng(5).uniform(0.2, 3.0, N)
NOISES = [1.0, 0.3, PER_POINT]


def _noise_matrix(noise) -> np.ndarray:
    return np.diag(np.broadcast_to(noise, (N,)))


@pytest.mark.parametrize("noise", NOISES)
def test_exact_factor_is_the_dense_matrix(noise):
    rng, z, r, onehot = _problem()
    lam, lam_ri = 1.7, 0.6
    v = _noise_matrix(noise) + lam * kernel(z, z, r) + lam_ri * onehot @ onehot.T
    _check_factor(exact_factor(z, r, lam, onehot @ onehot.T, lam_ri, noise), v, rng)


@pytest.mark.parametrize("noise", NOISES)
def test_woodbury_factor_is_the_dense_matrix(noise):
    rng, z, r, onehot = _problem()
    lam, lam_ri = 1.7, 0.6
    basis = low_rank_basis(z, z[:8], r)
    v = _noise_matrix(noise) + lam * basis @ basis.T + lam_ri * onehot @ onehot.T
    _check_factor(woodbury_factor(predictive_w(basis, lam, onehot, lam_ri), noise), v, rng)


def test_every_point_a_knot_gives_the_exact_kernel():
    """With k = n knots the predictive process is the exact kernel (up to K_kk's jitter)."""
    rng, z, r, _ = _problem()
    r = np.array([0.7, 0.2, 1.3])  # all in: K_kk well-conditioned, so the jitter is negligible
    exact, low_rank = exact_factor(z, r, 1.7), knots_factor(z, z, r, 1.7)
    x = rng.standard_normal(N)
    assert np.allclose(low_rank.solve(x), exact.solve(x), atol=1e-4)
    assert low_rank.logdet == pytest.approx(exact.logdet, abs=1e-4)


def test_basis_rows_are_per_point():
    """The basis at stacked points stacks the bases: the summaries' one basis per draw."""
    _, z, r, _ = _problem()
    z_new = z[:5] + 0.1
    stacked = low_rank_basis(np.vstack([z, z_new]), z[:8], r)
    assert np.allclose(stacked[:N], low_rank_basis(z, z[:8], r))
    assert np.allclose(stacked[N:], low_rank_basis(z_new, z[:8], r))


def _dense_conditional(k_all: np.ndarray, v: np.ndarray, t: np.ndarray, lam, s2):
    """h at the last rows of k_all given t at the first N: Var(t) = s2 v, Cov = s2 lam K."""
    cross, prior = k_all[N:, :N], k_all[N:, N:]
    mean = lam * cross @ np.linalg.solve(v, t)
    cov = s2 * lam * (prior - lam * cross @ np.linalg.solve(v, cross.T))
    return mean, cov


def test_conditional_in_coefficients_maps_to_the_points():
    """The predictive process's conditional of its coefficients, mapped by the basis, is the
    dense conditional of h under the kernel U U'."""
    rng, z, r, onehot = _problem()
    lam, lam_ri, s2, noise = 1.7, 0.6, 0.8, 0.5
    z_new = rng.standard_normal((6, M))
    basis = low_rank_basis(np.vstack([z, z_new]), z[:8], r)
    u_n, u_g = basis[:N], basis[N:]
    t = rng.standard_normal(N)
    factor = woodbury_factor(predictive_w(u_n, lam, onehot, lam_ri), noise)
    mean_a, cov_a = gaussian_conditional(factor, u_n, np.eye(8), t, lam, s2)
    v = noise * np.eye(N) + lam * u_n @ u_n.T + lam_ri * onehot @ onehot.T
    mean, cov = _dense_conditional(basis @ basis.T, v, t, lam, s2)
    assert np.allclose(u_g @ mean_a, mean)
    assert np.allclose(u_g @ cov_a @ u_g.T, cov)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("knots", [False, True])
def test_summaries_conditional_is_dense_conditioning(knots, weighted):
    """Each posterior draw's conditional in the summaries (random intercept, noise of the PyMC
    probit model's h, or a survey-weighted y's noise 1 / w_i) against dense Gaussian
    conditioning."""
    rng, z, r, onehot = _problem()
    draws = 3
    post = summary.HPosterior(
        X=np.zeros((N, 0)),
        z=z,
        beta=np.zeros((draws, 0)),
        sigma_sq=np.array([0.8, 1.0, 1.3]),
        lam=np.array([1.7, 0.5, 3.0]),
        r=np.stack([r, r * 0.5, r + 0.1]),
        exposures=("a", "b", "c"),
        knots=z[:8] if knots else None,
        lam_ri=np.array([0.6, 0.2, 1.0]),
        onehot=onehot,
        h_data=None if weighted else rng.standard_normal((draws, N)),
        y=rng.standard_normal(N),
        weights=1.0 / PER_POINT if weighted else None,
    )
    z_new = rng.standard_normal((5, M))
    for s in range(draws):
        mean, cov = summary._conditional(post, z_new, s, onehot @ onehot.T)
        points = np.vstack([z, z_new])
        if knots:
            basis = low_rank_basis(points, post.knots, post.r[s])
            k_all = basis @ basis.T
        else:
            k_all = kernel(points, points, post.r[s])
        lam = post.lam[s]
        noise = _noise_matrix(post.noise)
        v = noise + lam * k_all[:N, :N] + post.lam_ri[s] * onehot @ onehot.T
        expected = _dense_conditional(k_all, v, post.target(s), lam, post.sigma_sq[s])
        assert np.allclose(mean, expected[0], atol=1e-6)
        assert np.allclose(cov, expected[1], atol=1e-6)


def test_robust_cholesky_jitter_is_relative_to_its_scale():
    """A singular matrix: the jitter (relative to `scale`) makes it factorisable, and within
    max_jitter it raises rather than grow."""
    ones = np.ones((4, 4))
    chol = robust_cholesky(ones, jitter=1e-6, max_jitter=1e-6, scale=2.0)
    assert np.allclose(chol @ chol.T, ones + 2e-6 * np.eye(4))
    with pytest.raises(np.linalg.LinAlgError):
        robust_cholesky(-ones, jitter=1e-9, max_jitter=1e-9, scale=1.0)
