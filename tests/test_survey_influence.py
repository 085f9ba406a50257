"""The infinitesimal-jackknife design variance of posterior summaries, against the exact
algebra: on a survey GLM it equals the Williams-Savitsky sandwich H^-1 J H^-1 (which
tests/test_survey_reference.py checks against R's svyglm), and the rescaled draws have the
variance asked for."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayesmetal import survey_adjust, survey_influence
from bayesmetal.families import WEIGHTED_LIKELIHOOD
from bayesmetal.models.glm import GlmSpec
from tests.test_survey_adjust import _glm_design, _model, _synthetic_posterior, _vector

CHAINS, DRAWS = 4, 4000


def _weighted_loglik(design, posterior) -> np.ndarray:
    """(chain, draw, n): each person's weight x log N(y; intercept + terms beta + X gamma,
    sigma), the GLM's pointwise pseudo-likelihood, in numpy over every draw."""
    mu = (
        posterior["intercept"].to_numpy()[..., None]
        + posterior["beta"].to_numpy() @ design.multi_terms().values.T
        + posterior["gamma"].to_numpy() @ design.X.T
    )
    sigma = posterior["sigma"].to_numpy()[..., None]
    return design.survey.weights * stats.norm.logpdf(design.y, mu, sigma)


@pytest.fixture(scope="module")
def glm_case():
    """Draws from the pseudo-posterior's normal approximation N(theta_hat, H^-1) of a
    weighted GLM (6 strata x 2 PSUs, unequal weights; theta_hat its mode), each person's
    weighted log-likelihood at every draw, and the sandwich at theta_hat. (Away from the
    mode the two estimators differ at second order: at the prior's centre + 0.05 the
    jackknife ran 6-12% below the sandwich.)"""
    design = _glm_design()
    model = _model(design, GlmSpec(name="glm", kind="multi"))
    with model:  # centred where a posterior is: at a point of zero total score
        mode = pm.find_MAP(include_transformed=True, progressbar=False)
    centre = _vector(model, {v.name: mode[v.name] for v in model.value_vars})
    matrices = survey_adjust.sandwich(model, centre, design.survey)
    draws, posterior = _synthetic_posterior(
        model, centre, matrices["inverse_hessian"], chains=CHAINS, draws=DRAWS
    )
    loglik = _weighted_loglik(design, posterior)
    pointwise = model.compile_fn(
        model.replace_rvs_by_values([model[WEIGHTED_LIKELIHOOD]])[0],
        inputs=model.value_vars,
        point_fn=True,
    )
    first = posterior.isel(chain=[0], draw=[0])
    assert np.allclose(
        _weighted_loglik(design, first)[0, 0], pointwise(survey_adjust._point(model, draws[0]))
    ), "the numpy pseudo-likelihood is the model's"
    beta = posterior["beta"].to_numpy()  # (chain, draw, 2): an unconstrained block
    return design, model, matrices, beta, loglik


def test_jackknife_variance_is_the_sandwich_on_a_glm(glm_case):
    """Monte Carlo error: over four seeds the ratio was 0.96-1.03 (about 3%); the bound is
    10%."""
    design, model, matrices, beta, loglik = glm_case
    variance = survey_influence.design_variance(beta, loglik, design.survey)
    names = [v.name for v in model.value_vars]
    start = sum(np.size(model.initial_point()[n]) for n in names[: names.index("beta")])
    expected = np.diag(matrices["sandwich"])[start : start + 2]
    assert np.all(np.abs(variance / expected - 1) < 0.10), (variance, expected)
    naive = np.diag(matrices["inverse_hessian"])[start : start + 2]
    assert np.any(np.abs(variance / naive - 1) > 0.5), "the design must matter here"


def test_halves_remove_the_noise_that_squaring_one_estimate_adds(glm_case):
    """With the summary replaced by noise independent of the data, the influences are pure
    Monte Carlo noise and the true variance is 0. Over 30 noise draws the cross products of
    two halves average 0 (within 3 SEs), while squaring one half's influences averages a
    positive variance: the bias the halves remove."""
    design, _, _, beta, loglik = glm_case
    totals = design.survey.psu_totals(loglik.reshape(-1, loglik.shape[-1]).T).T
    totals_a, totals_b = survey_influence._halves(totals.reshape(CHAINS, DRAWS, -1))
    crosses, squares = [], []
    for seed in range(30):
        noise = np.random.default_rng(seed).standard_normal((CHAINS, DRAWS, 1))
        noise_a, noise_b = survey_influence._halves(noise)
        psi_a = survey_influence.influences(noise_a, totals_a).T
        psi_b = survey_influence.influences(noise_b, totals_b).T
        crosses.append(design.survey.psu_covariance(psi_a, psi_b)[0, 0])
        squares.append(design.survey.psu_covariance(psi_a)[0, 0])
    se = np.std(crosses, ddof=1) / np.sqrt(30)
    assert abs(np.mean(crosses)) < 3 * se, (np.mean(crosses), se)
    assert np.mean(squares) > 5 * np.std(squares, ddof=1) / np.sqrt(30), squares


def test_adjust_rescales_to_the_variance_with_t_tails():
    rng = np.random.default_rng(1)
    values = np.stack(
        [rng.normal(2.0, 0.5, (4, 5000)), rng.normal(-1.0, 2.0, (4, 5000)), np.zeros((4, 5000))],
        axis=-1,
    )
    target = np.array([1.0, 0.25, 3.0])
    normal = survey_influence.adjust(values, target)
    assert np.allclose(normal.var(axis=(0, 1), ddof=1), target[:2].tolist() + [0.0])
    assert np.allclose(np.median(normal, axis=(0, 1)), np.median(values, axis=(0, 1)))
    t = survey_influence.adjust(values, target, t_df=8, seed=2)
    half = np.diff(np.quantile(t[..., 0], [0.025, 0.975]))[0] / 2
    expected = stats.t.ppf(0.975, 8) * np.sqrt(target[0])
    assert half == pytest.approx(expected, rel=0.03)


def test_adjust_keeps_a_spike_at_zero_where_it_is():
    """A summary that is exactly 0 in most draws (an exposure rarely selected) keeps its
    spike at 0 when its spread is doubled: the draws are scaled about the median."""
    rng = np.random.default_rng(3)
    slab = rng.random((2, 2000)) < 0.2
    values = np.where(slab, rng.normal(-0.5, 0.2, (2, 2000)), 0.0)[..., None]
    adjusted = survey_influence.adjust(values, 4 * values.var(axis=(0, 1), ddof=1))
    assert np.array_equal(adjusted == 0, values == 0)
    assert adjusted.var(ddof=1) == pytest.approx(4 * values.var(ddof=1))


def test_adjust_refuses_a_variance_it_cannot_trust():
    values = np.random.default_rng(2).normal(size=(2, 100, 2))
    with pytest.raises(ValueError, match=r"summaries \[1\]"):
        survey_influence.adjust(values, np.array([1.0, -0.01]))


@pytest.mark.parametrize("chains, sizes", [(1, (50, 50)), (3, (100, 200)), (4, (200, 200))])
def test_halves_are_disjoint_and_cover_every_draw(chains, sizes):
    draws = np.arange(chains * 100, dtype=float).reshape(chains, 100, 1)
    first, second = survey_influence._halves(draws)
    assert (len(first), len(second)) == sizes
    assert sorted(np.concatenate([first, second])[:, 0]) == list(draws.ravel())
