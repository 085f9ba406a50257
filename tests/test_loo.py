"""PSIS-LOO of a fit against the closed form of a linear regression's leave-one-out
predictive, and where it does not apply."""

from __future__ import annotations

import numpy as np
from scipy import stats

from bayesmetal import loo
from bayesmetal.design import make_design
from bayesmetal.models.contract import Fit
from bayesmetal.models.glm import GlmSpec
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.workflow import fit_design

from .toydata import glm_frame


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
