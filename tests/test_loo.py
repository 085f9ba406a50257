"""PSIS-LOO of a fit against the closed form of a linear regression's leave-one-out
predictive, and where it does not apply."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayesmetal import loo
from bayesmetal.design import make_design
from bayesmetal.models.bkmr import BkmrSpec
from bayesmetal.models.contract import Fit
from bayesmetal.models.glm import GlmSpec
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.workflow import fit_design

from .toydata import glm_frame


@pytest.mark.slow  # seconds of MCMC: the slow step
def test_psis_loo_matches_the_linear_regressions_exact_leave_one_out():
    frame, _ = glm_frame(200, "gaussian", seed=8)
    design = make_design(frame, "y", "gaussian", ["e1", "e2"], ["age", "sex"])
    sampler = SamplerSpec(chains=2, tune=500, draws=1000, seed=3, progressbar=False)
    fits, idatas = fit_design(design, GlmSpec(name="glm", kind="multi"), sampler)
    points = loo.pointwise(fits[0], idatas[fits[0].label], design.ids)
    # the reference: least squares leave-one-out, y_i against the fit without it, Student t
    # on n - p - ... df with scale s^2 / (1 - h_ii) (flat priors; these priors are weak)
    X = np.column_stack([np.ones(design.n), design.log_exposures, design.X])
    hat = X @ np.linalg.solve(X.T @ X, X.T)
    residual = design.y - hat @ design.y
    h = np.diag(hat)
    n, p = X.shape
    loo_residual = residual / (1 - h)
    s2_minus = (residual @ residual - residual**2 / (1 - h)) / (n - p - 1)
    exact = stats.t.logpdf(loo_residual, n - p - 1, scale=np.sqrt(s2_minus / (1 - h)))
    assert abs(points["elpd_loo"].sum() - exact.sum()) < 1.5  # MC error of the sum ~0.3
    assert np.corrcoef(points["elpd_loo"], exact)[0, 1] > 0.999
    assert (points["pareto_k"] < loo.K_WARN).all()
    table = loo.summary(points)
    assert table.loc[0, "n"] == design.n and table.loc[0, "se"] > 0
    # a model without e1 predicts worse: the difference is several of its SEs
    frame_without = frame.assign(e1=1.0 + 0 * frame.e1)
    smaller = make_design(frame_without, "y", "gaussian", ["e2"], ["age", "sex"])
    fits_b, idatas_b = fit_design(smaller, GlmSpec(name="glm", kind="multi"), sampler)
    other = loo.pointwise(fits_b[0], idatas_b[fits_b[0].label], smaller.ids)
    diff, se = loo.difference(other["elpd_loo"], points["elpd_loo"])
    assert diff > 2 * se > 0


def test_no_loo_for_a_weighted_pseudo_likelihood_or_another_engine():
    weighted = Fit("multi", _potential_only, {"mu": ()})
    assert loo.pointwise(weighted, None, np.arange(3)) is None
    gibbs = Fit("bkmr", _potential_only, {"mu": ()}, engine="bkmr-gibbs")
    assert loo.pointwise(gibbs, None, np.arange(3)) is None


def _potential_only():
    import pymc as pm

    with pm.Model() as model:  # a survey fit's likelihood: a Potential, no observed variable
        mu = pm.Normal("mu")
        pm.Potential("y_weighted", -(mu**2))
    return model


def test_bkmr_leave_one_out_conditionals_are_the_gaussians_of_the_full_covariance():
    from bayesmetal.bkmr.kernel import kernel

    rng = np.random.default_rng(4)
    n, m = 40, 3
    z = rng.normal(size=(n, m))
    knots = z[rng.choice(n, 12, replace=False)]
    r, lam, sigma_sq = np.array([0.5, 0.0, 1.2]), 2.0, 0.3
    resid = rng.normal(size=n)
    k_nk = kernel(z, knots, r)
    k_kk = kernel(knots, knots, r) + 1e-6 * np.eye(len(knots))
    cov = sigma_sq * (np.eye(n) + lam * k_nk @ np.linalg.solve(k_kk, k_nk.T))
    exact = np.empty(n)
    for i in range(n):  # the conditional of resid_i given the rest, by the Schur complement
        rest = np.delete(np.arange(n), i)
        weights = np.linalg.solve(cov[np.ix_(rest, rest)], cov[rest, i])
        mean, var = weights @ resid[rest], cov[i, i] - cov[i, rest] @ weights
        exact[i] = stats.norm.logpdf(resid[i], mean, np.sqrt(var))
    got = loo.bkmr_loo_conditional(resid, z, knots, r, lam, sigma_sq)
    np.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-8)


@pytest.mark.slow  # seconds of MCMC: the slow step
def test_bkmr_psis_loo_beats_a_model_without_the_active_exposure(tmp_path):
    frame, _ = glm_frame(150, "gaussian", seed=9)
    frame["y"] = frame["y"] + np.sin(2 * np.log(frame["e1"]))  # a non-linear effect of e1
    design = make_design(frame, "y", "gaussian", ["e1", "e2"], ["age", "sex"])
    spec = BkmrSpec(name="bkmr", knots=20)
    sampler = SamplerSpec(chains=2, tune=300, draws=300, seed=3, progressbar=False)
    fits, idatas = fit_design(design, spec, sampler)
    points = loo.pointwise(fits[0], idatas["bkmr"], design.ids)
    assert len(points) == design.n and np.isfinite(points["elpd_loo"]).all()
    assert (points["pareto_k"] > loo.K_WARN).mean() < 0.05
    glm_fits, glm_idatas = fit_design(design, GlmSpec(name="glm", kind="multi"), sampler)
    linear = loo.pointwise(glm_fits[0], glm_idatas[glm_fits[0].label], design.ids)
    diff, se = loo.difference(linear["elpd_loo"], points["elpd_loo"])
    assert diff > se > 0  # BKMR finds the curve the linear model misses
