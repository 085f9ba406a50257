"""Bayesian GLMs agree with statsmodels when priors are weak; terms are built correctly."""

import numpy as np
import pytest
import statsmodels.api as sm

from bayesmetal.design import make_design
from bayesmetal.models import glm
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.sampling import sample
from bayesmetal.summaries.posterior import draws

from .toydata import glm_frame

FAST = SamplerSpec(chains=2, tune=500, draws=500, seed=11, progressbar=False)


@pytest.mark.parametrize("family, n", [("gaussian", 400), ("bernoulli", 1500)])
def test_posterior_means_match_statsmodels(family, n):
    frame, _ = glm_frame(n, family, seed=5)
    design = make_design(frame, "y", family, ["e1", "e2"], ["age", "sex"], id_column="none")
    terms = design.multi_terms()
    model = glm.build_glm(design, terms, glm.default_priors(None, family))
    idata = sample(model, FAST)
    X = sm.add_constant(np.column_stack([terms.values, design.X]))
    sm_family = sm.families.Gaussian() if family == "gaussian" else sm.families.Binomial()
    mle = sm.GLM(design.y, X, family=sm_family).fit()
    posterior = np.concatenate([draws(idata, "beta"), draws(idata, "gamma")], axis=1).mean(axis=0)
    # within a fifth of a standard error: Monte Carlo error and weak-prior shrinkage are smaller
    assert (np.abs(posterior - mle.params[1:]) < 0.2 * mle.bse[1:]).all(), (posterior, mle.params)


def test_quantile_and_trend_terms():
    frame, _ = glm_frame(200, "gaussian", seed=1)
    design = make_design(frame, "y", "gaussian", ["e1", "e2"], [], id_column="none")
    q = design.quantile_terms("e1")
    assert q.names == ("e1 Q2", "e1 Q3", "e1 Q4")
    assert q.values.sum(axis=0).tolist() == [50, 50, 50]  # Q1 (50 people) is the reference
    assert (q.values.sum(axis=1) <= 1).all()
    trend = design.trend_terms("e1").values[:, 0]
    scores = design.quantiles[:, 0]
    assert len(np.unique(trend)) == 4
    assert all(np.diff([trend[scores == k][0] for k in range(4)]) > 0)  # ordered by quantile
    assert trend.mean() == pytest.approx(0) and trend.std(ddof=1) == pytest.approx(1)


def test_text_covariates_are_categorical_whatever_pandas_calls_their_dtype():
    """pandas 3 gives text columns the `str` dtype, not object: they fell through to the
    numeric path and failed with 'could not convert string to float'."""
    from bayesmetal.design import make_design

    frame, _ = glm_frame(50, "gaussian", seed=1)
    for dtype in (object, "str"):
        frame["sex"] = frame["sex"].astype(str).astype(dtype)
        design = make_design(frame, "y", "gaussian", ["e1"], ["age", "sex"], id_column="none")
        assert design.covariate_columns == ("age", "sex[male]")
