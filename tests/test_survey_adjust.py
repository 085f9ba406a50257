"""The design-based adjustment of a weighted pseudo-posterior, checked against exact algebra:
per-person scores against PyTensor's exact Jacobian, the sandwich against the weighted
least-squares formula, and the adjusted draws' covariance against the sandwich."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr

from bayesmetal import priors as prior_lib
from bayesmetal import survey_adjust
from bayesmetal.arviz_api import InferenceData
from bayesmetal.design import make_design
from bayesmetal.families import WEIGHTED_LIKELIHOOD
from bayesmetal.models import registry
from bayesmetal.models.bwqs import BwqsSpec
from bayesmetal.models.glm import GlmSpec
from bayesmetal.survey_design import SurveyWeights
from tests.toydata import bwqs_design, glm_frame

WIDE = {
    "intercept": {"distribution": "Normal", "mu": 0, "sigma": 1000},
    "beta": {"distribution": "Normal", "mu": 0, "sigma": 1000},
    "gamma": {"distribution": "Normal", "mu": 0, "sigma": 1000},
}


def _survey(n: int, seed: int, strata: int = 6) -> SurveyWeights:
    """Unequal weights, `strata` strata of 2 PSUs; persons assigned to PSUs at random."""
    rng = np.random.default_rng(seed)
    psu = rng.integers(0, 2 * strata, n)
    weights = rng.gamma(2.0, 1.0, n)
    return SurveyWeights(weights * n / weights.sum(), psu // 2, psu, np.arange(2 * strata) // 2)


def _model(design, spec, overrides=None) -> pm.Model:
    priors = prior_lib.resolve(
        registry.default_priors(spec, design.family), overrides or {}, spec.name
    )
    return registry.definition(spec).fits(design, spec, priors, 1)[0].build()


def _glm_design(n: int = 300, family: str = "gaussian"):
    frame, _ = glm_frame(n, family, seed=3)
    frame["SEQN"] = range(n)
    survey = _survey(n, seed=4)
    return make_design(frame, "y", family, ["e1", "e2"], ["age", "sex"], survey=survey)


def _vector(model: pm.Model, values: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([np.ravel(values[v.name]) for v in model.value_vars])


@pytest.mark.parametrize("family", ["gaussian", "bernoulli"])
def test_scores_by_differences_equal_the_exact_jacobian(family):
    design = _glm_design(80, family)
    model = _model(design, GlmSpec(name="glm", kind="multi"))
    rng = np.random.default_rng(5)
    centre = _vector(model, model.initial_point()) + rng.normal(0, 0.3, 5 + (family == "gaussian"))
    pointwise = model.replace_rvs_by_values([model[WEIGHTED_LIKELIHOOD]])[0]
    jacobians = pytensor.gradient.jacobian(pointwise, model.value_vars)
    exact = model.compile_fn(
        pt.concatenate([j.reshape((pointwise.shape[0], -1)) for j in jacobians], axis=1),
        inputs=model.value_vars,
    )(survey_adjust._point(model, centre))
    assert np.allclose(survey_adjust.person_scores(model, centre), exact, rtol=1e-6, atol=1e-8)


def test_sandwich_equals_the_weighted_least_squares_formula():
    """At the weighted least-squares estimate, with priors too wide to matter, the sandwich's
    coefficient block is (X'WX)^-1 Var_design(sum w x e) (X'WX)^-1: what svyglm reports."""
    design = _glm_design()
    model = _model(design, GlmSpec(name="glm", kind="multi"), WIDE)
    terms = design.multi_terms().values
    X = np.column_stack([np.ones(design.n), terms, design.X])
    w = design.survey.weights
    beta = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * design.y))
    residuals = design.y - X @ beta
    sigma = np.sqrt(np.sum(w * residuals**2) / w.sum())
    point = {
        "intercept": beta[0],
        "beta": beta[1:3],
        "gamma": beta[3:],
        "sigma_log__": np.log(sigma),
    }
    matrices = survey_adjust.sandwich(model, _vector(model, point), design.survey)
    bread = np.linalg.inv(X.T @ (w[:, None] * X))
    meat = design.survey.total_covariance((w * residuals)[:, None] * X)
    expected = bread @ meat @ bread
    assert np.allclose(matrices["sandwich"][:-1, :-1], expected, rtol=1e-3)
    assert np.allclose(matrices["inverse_hessian"][:-1, :-1], bread * sigma**2, rtol=1e-3)


def _synthetic_posterior(model, centre, covariance, chains=2, draws=2000, seed=7):
    """Draws N(centre, covariance) on the unconstrained scale, as a posterior group."""
    rng = np.random.default_rng(seed)
    unconstrained = rng.multivariate_normal(centre, covariance, chains * draws)
    with model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        shaped = pm.sample_prior_predictive(draws=draws, random_seed=1).prior
    like = shaped.isel(chain=[0] * chains).assign_coords(chain=np.arange(chains))
    return unconstrained, survey_adjust.constrained(model, unconstrained, like)


def test_adjusted_draws_have_the_sandwich_covariance_through_the_transforms():
    """BWQS (a simplex of weights, a log-scale sigma): draws mapped to the constrained scale
    and back are unchanged, and the adjusted draws have the sandwich covariance (within Monte
    Carlo error of 4,000 draws: a relative SE of about sqrt(2/4000) = 2% for a variance)."""
    design = bwqs_design(200, "gaussian", 0.5, seed=8)
    design = replace(design, survey=_survey(200, seed=9))
    model = _model(design, BwqsSpec(name="bwqs"))
    centre = _vector(model, model.initial_point()) + 0.1
    matrices = survey_adjust.sandwich(model, centre, design.survey)
    draws, posterior = _synthetic_posterior(model, centre, matrices["inverse_hessian"])
    assert np.allclose(survey_adjust.unconstrained_draws(model, posterior), draws, atol=1e-8)
    assert np.allclose(posterior["w"].sum("exposure"), 1)
    adjusted = survey_adjust.adjust(model, InferenceData(posterior=posterior), design.survey)
    assert "pseudo_posterior" in adjusted.groups()
    again = survey_adjust.unconstrained_draws(model, adjusted.posterior)
    target = matrices["sandwich"]
    sd_ratio = np.sqrt(np.diag(np.cov(again.T)) / np.diag(target))
    assert np.all(np.abs(sd_ratio - 1) < 0.06), sd_ratio
    assert np.allclose(again.mean(axis=0), draws.mean(axis=0), atol=1e-10)
    assert set(adjusted.posterior.data_vars) == set(posterior.data_vars)
    assert isinstance(adjusted.posterior, xr.Dataset)


def test_adjust_refuses_an_unweighted_model():
    design = replace(_glm_design(), survey=None)
    model = _model(design, GlmSpec(name="glm", kind="multi"))
    centre = _vector(model, model.initial_point())
    with pytest.raises(Exception, match="pseudo-likelihood"):
        survey_adjust.sandwich(model, centre, _survey(design.n, 1))


def test_t_intervals_widen_the_adjusted_draws_to_t_quantiles_on_the_design_df():
    """intervals: 't' (6 strata x 2 PSUs: df 6): the adjusted draws' deviations are t_6 with
    the sandwich scale, so the 95% half-widths grow by t_6(0.975) / z(0.975) = 1.25 over the
    normal adjustment of the same draws (Monte Carlo error of 40,000 draws: about 2%); the
    centre is unchanged and the same seed gives the same draws."""
    from scipy import stats

    design = _glm_design()
    model = _model(design, GlmSpec(name="glm", kind="multi"))
    centre = _vector(model, model.initial_point()) + 0.05
    matrices = survey_adjust.sandwich(model, centre, design.survey)
    _, posterior = _synthetic_posterior(
        model, centre, matrices["inverse_hessian"], chains=4, draws=10_000
    )
    idata = InferenceData(posterior=posterior)
    normal = survey_adjust.adjust(model, idata, design.survey)
    t_survey = replace(design.survey, intervals="t")
    t = survey_adjust.adjust(model, idata, t_survey, seed=3)
    assert t_survey.t_df == 6 and design.survey.t_df is None
    assert t.posterior.attrs["survey_intervals"] == "t on 6 design df"

    def half_widths(data):
        draws = data.posterior["beta"].stack(s=("chain", "draw")).to_numpy()
        return np.diff(np.quantile(draws, [0.025, 0.975], axis=-1), axis=0)[0] / 2

    ratio = half_widths(t) / half_widths(normal)
    expected = stats.t.ppf(0.975, 6) / stats.norm.ppf(0.975)
    assert np.all(np.abs(ratio / expected - 1) < 0.04), (ratio, expected)
    centres = [d.posterior["beta"].median(("chain", "draw")).to_numpy() for d in (t, normal)]
    assert np.allclose(*centres, atol=0.02 * half_widths(normal).min())
    again = survey_adjust.adjust(model, idata, t_survey, seed=3)
    assert np.array_equal(again.posterior["beta"], t.posterior["beta"])
    # one chi-square per draw, shared by every parameter (a multivariate t, as sums such as
    # qgcomp's psi need): each draw's deviations grow by the same factor in every coordinate
    centre = survey_adjust.unconstrained_draws(model, normal.posterior).mean(axis=0)
    deviations = [
        survey_adjust.unconstrained_draws(model, d.posterior) - centre for d in (t, normal)
    ]
    factors = deviations[0] / deviations[1]
    assert np.allclose(factors, factors[:, :1], rtol=1e-6)
