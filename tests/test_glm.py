"""Bayesian GLMs agree with statsmodels when priors are weak; terms are built correctly; the
effects table reports its point estimate as BKMR's do; figures name the units."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import statsmodels.api as sm
import yaml

from bayesmetal import workflow
from bayesmetal.arviz_api import from_chains
from bayesmetal.config import load_config
from bayesmetal.design import make_design
from bayesmetal.models import glm
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.sampling import sample
from bayesmetal.summaries.glm import effects
from bayesmetal.summaries.posterior import draws

from .fakesampler import use_fake_sampler
from .toydata import base_config, glm_frame

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


def test_quantiles_merged_by_ties_at_the_lod_get_no_empty_indicator():
    """Cd and Hg in the children's cohort: half the values at LOD/sqrt(2) leave 3 groups; an
    indicator of the missing fourth held nobody and reported its prior, 0 [-4.8, 4.9]."""
    frame, _ = glm_frame(200, "gaussian", seed=1)
    frame.loc[:109, "e1"] = 0.05  # 55% at one value: the first two cut points coincide
    design = make_design(frame, "y", "gaussian", ["e1", "e2"], [], id_column="none")
    terms = design.quantile_terms("e1")
    assert len(terms.names) == len(np.unique(design.quantiles[:, 0])) - 1 < 3
    assert (terms.values.sum(axis=0) > 0).all()


def test_text_covariates_are_categorical_whatever_pandas_calls_their_dtype():
    """pandas 3 gives text columns the `str` dtype, not object: they fell through to the
    numeric path and failed with 'could not convert string to float'."""
    from bayesmetal.design import make_design

    frame, _ = glm_frame(50, "gaussian", seed=1)
    for dtype in (object, "str"):
        frame["sex"] = frame["sex"].astype(str).astype(dtype)
        design = make_design(frame, "y", "gaussian", ["e1"], ["age", "sex"], id_column="none")
        assert design.covariate_columns == ("age", "sex[male]")


def beta_idata(values: np.ndarray, terms=("e1", "e2")):
    """InferenceData holding `beta` draws shaped (chain, draw, term)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ on fewer draws than chains
        return from_chains({"beta": values}, {"term": list(terms)}, {"beta": ["term"]})


@pytest.mark.parametrize("family", ["gaussian", "bernoulli", "poisson"])
def test_effects_estimate_is_the_median_beside_mean_and_median(family):
    rng = np.random.default_rng(3)
    beta = rng.gamma(1.5, 0.4, (2, 300, 2)) - 0.2  # skewed: mean and median differ
    table = effects(beta_idata(beta), family, 0.9, "multi")
    assert list(table.columns[:8]) == [
        *("fit", "term", "measure", "estimate", "estimate_is", "mean", "median", "sd"),
    ]
    assert set(table["estimate_is"]) == {"median"}
    assert (table["estimate"] == table["median"]).all()
    assert ((table["lower"] <= table["estimate"]) & (table["estimate"] <= table["upper"])).all()
    flat = beta.reshape(-1, 2)
    ratio = family != "gaussian"
    on_scale = np.exp(flat) if ratio else flat
    np.testing.assert_allclose(table["mean"], on_scale.mean(axis=0))
    np.testing.assert_allclose(table["median"], np.median(on_scale, axis=0), rtol=1e-4)
    np.testing.assert_allclose(table["lower"], np.quantile(on_scale, 0.05, axis=0), rtol=1e-4)
    assert not np.allclose(table["mean"], table["median"])
    np.testing.assert_allclose(table["sd"], flat.std(axis=0, ddof=1))  # beta's, on any scale


def test_one_chain_of_one_draw_summarises_without_warnings():
    idata = beta_idata(np.array([[[0.1, -0.2]]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's 'Degrees of freedom <= 0' included
        table = effects(idata, "gaussian", 0.95, "multi")
    assert table["sd"].isna().all() and (table["estimate"] == [0.1, -0.2]).all()


def test_the_forest_plot_of_a_run_names_the_outcome_unit(tmp_path, monkeypatch):
    use_fake_sampler(monkeypatch)
    frame, _ = glm_frame(80, "gaussian", seed=2)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    config = base_config(str(tmp_path / "cohort.csv"), units={"y": "g/cm^2", "e1": "ug/dL"})
    path = tmp_path / "glm.yaml"
    path.write_text(yaml.safe_dump(config))
    plan = workflow.plan(load_config(path))
    results = workflow.summarise(plan, workflow.sample_fits(plan))
    label = results.figures["forest"].axes[0].get_xlabel()
    assert label.startswith("beta: change in y (g/cm²)"), label
    assert set(results.tables["effects"]["estimate_is"]) == {"median"}
    plt.close("all")
