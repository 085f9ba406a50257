"""Count families (poisson, negative_binomial) end to end at the design/model level: parameter
recovery on simulated data with a known truth, agreement with a frequentist Poisson GLM, BWQS
weights under a Poisson outcome, rate-ratio summaries and the count-outcome validation.

Recovery tolerances are in posterior SDs: with a correct model the posterior mean lies within
about 2 SD of the truth, and the Monte Carlo error of the mean (SD / sqrt(ESS), ESS of several
hundred here) adds under a tenth of an SD; Z = 3.5 leaves room for that over the handful of
coefficients checked, and each test also requires the posterior to be informative (a small SD)
so that a broken likelihood cannot pass by being vague. Seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import statsmodels.api as sm
import xarray as xr
from scipy import stats

from bayesmetal import families
from bayesmetal import priors as prior_lib
from bayesmetal.arviz_api import InferenceData
from bayesmetal.design import make_design
from bayesmetal.errors import DataError
from bayesmetal.models import bwqs, glm
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.sampling import sample
from bayesmetal.summaries import bwqs as bwqs_summary
from bayesmetal.summaries import glm as glm_summary
from bayesmetal.summaries.posterior import draws

from .toydata import predictors

FAST = SamplerSpec(chains=2, tune=500, draws=500, seed=17, progressbar=False)
Z = 3.5  # recovery tolerance in posterior SDs (see the module docstring)
COUNT_FAMILIES = ("poisson", "negative_binomial")
TRUE_ALPHA = 2.0  # NB dispersion: variance = mu + mu^2 / 2, strongly overdispersed
TRUE_WEIGHTS = np.array([0.55, 0.3, 0.15, 0.0, 0.0, 0.0])


def _glm_priors(family: str) -> dict:
    return glm.default_priors(None, family)  # the GLM's defaults: weak, Normal(0, 2.5) slopes


def _counts(rng: np.random.Generator, eta: np.ndarray, family: str) -> np.ndarray:
    mu = np.exp(eta)
    if family == "poisson":
        return rng.poisson(mu).astype(float)
    # numpy's NB(n, p) has mean n(1-p)/p: n = alpha, p = alpha / (alpha + mu) gives mean mu
    return rng.negative_binomial(TRUE_ALPHA, TRUE_ALPHA / (TRUE_ALPHA + mu)).astype(float)


def count_frame(n: int, family: str, seed: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """Two log-normal exposures, a numeric and a categorical covariate, a count outcome y with
    log E[y] = 0.3 + 0.35 log e1 - 0.5 log e2 + 0.01 (age - 50) + 0.3 female (mean about 1.3)."""
    rng = np.random.default_rng(seed)
    frame = predictors(rng, n)
    truth = {"e1": 0.35, "e2": -0.5, "age": 0.01, "sex[female]": 0.3}
    eta = 0.3 + truth["e1"] * np.log(frame.e1) + truth["e2"] * np.log(frame.e2)
    eta = eta + truth["age"] * (frame.age - 50) + truth["sex[female]"] * (frame.sex == "female")
    frame["y"] = _counts(rng, eta.to_numpy(), family)
    return frame, truth


def _glm_fit(family: str, n: int, seed: int):
    frame, truth = count_frame(n, family, seed)
    design = make_design(frame, "y", family, ["e1", "e2"], ["age", "sex"], id_column="none")
    terms = design.multi_terms()
    idata = sample(glm.build_glm(design, terms, _glm_priors(family)), FAST)
    # the design scales numeric covariates: age's coefficient is per SD of age
    gamma_truth = [truth["age"] * design.covariate_scaling["age"][1], truth["sex[female]"]]
    return design, terms, idata, np.array([truth["e1"], truth["e2"]]), np.array(gamma_truth)


@pytest.fixture(scope="module")
def poisson_fit():
    return _glm_fit("poisson", 600, seed=31)


@pytest.fixture(scope="module")
def nb_fit():
    return _glm_fit("negative_binomial", 800, seed=32)


def _recovered(samples: np.ndarray, truth: np.ndarray, max_sd: float) -> None:
    mean, sd = samples.mean(axis=0), samples.std(axis=0, ddof=1)
    assert (sd < max_sd).all(), f"posterior too vague: sd {sd}"
    assert (np.abs(mean - truth) < Z * sd).all(), f"truth {truth}, mean {mean} +- {sd}"


@pytest.mark.parametrize("fit", ["poisson_fit", "nb_fit"])
def test_glm_recovers_coefficients(fit, request):
    design, _, idata, beta, gamma = request.getfixturevalue(fit)
    assert design.y.dtype == np.int64  # counts reach PyMC as integers
    _recovered(draws(idata, "beta"), beta, max_sd=0.12)
    _recovered(draws(idata, "gamma"), gamma, max_sd=0.15)
    assert "sigma" not in idata.posterior


def test_negative_binomial_recovers_dispersion(nb_fit):
    _, _, idata, _, _ = nb_fit
    alpha = draws(idata, "alpha")
    _recovered(alpha[:, None], np.array([TRUE_ALPHA]), max_sd=0.6)
    # overdispersion is found: a Poisson (alpha -> infinity) is far outside the posterior
    assert np.quantile(alpha, 0.975) < 5


def test_poisson_rate_ratios_match_statsmodels(poisson_fit):
    design, terms, idata, _, _ = poisson_fit
    X = sm.add_constant(np.column_stack([terms.values, design.X]))
    mle = sm.GLM(design.y, X, family=sm.families.Poisson()).fit()
    table = glm_summary.effects(idata, "poisson", 0.95, "multi")
    assert (table["measure"] == "rate ratio").all()
    log_rr = np.log(table["estimate"].to_numpy())  # the posterior median log rate ratio
    # within a fifth of a posterior SD: Monte Carlo error (~SD/25) and the shrinkage of the
    # Normal(0, 2.5) priors against standard errors near 0.05 are both smaller
    assert (np.abs(log_rr - mle.params[1:3]) < 0.2 * table["sd"].to_numpy()).all(), (
        np.exp(log_rr),
        np.exp(mle.params[1:3]),
    )
    gamma = draws(idata, "gamma")
    assert (np.abs(gamma.mean(axis=0) - mle.params[3:]) < 0.2 * gamma.std(axis=0)).all()
    assert table["sd"].to_numpy() == pytest.approx(mle.bse[1:3], rel=0.2)


@pytest.mark.slow  # a recovery test: 15-20 s of MCMC
def test_bwqs_poisson_recovers_weights():
    rng = np.random.default_rng(33)
    n, m, b1 = 700, len(TRUE_WEIGHTS), 0.6
    correlated = rng.multivariate_normal(np.zeros(m), 0.3 + 0.7 * np.eye(m), n)
    frame = pd.DataFrame(np.exp(correlated), columns=[f"x{j + 1}" for j in range(m)])
    frame["age"] = rng.uniform(20, 80, n)
    scores = np.column_stack([pd.qcut(frame[c], 4, labels=False) for c in frame.columns[:m]])
    frame["y"] = rng.poisson(np.exp(-0.3 + b1 * scores @ TRUE_WEIGHTS + 0.01 * (frame.age - 50)))
    exposures = list(frame.columns[:m])
    design = make_design(frame, "y", "poisson", exposures, ["age"], 4, id_column="none")
    spec = bwqs.BwqsSpec(name="bwqs")
    idata = sample(bwqs.build_bwqs(design, spec, bwqs.default_priors(spec, "poisson")), FAST)
    weights = bwqs_summary.weights(idata, 0.95).set_index("exposure")["mean"].to_numpy()
    assert list(np.argsort(-weights)[:2]) == [0, 1], weights
    assert (weights[3:] < 0.1).all(), weights
    assert abs(weights[0] - TRUE_WEIGHTS[0]) < 0.15, weights
    effect = bwqs_summary.index_effects(idata, "poisson", 0.95).iloc[0]
    assert effect["lower"] < b1 < effect["upper"]
    assert effect["rr_lower"] < np.exp(b1) < effect["rr_upper"]


# ---- summaries: which families report exp(coefficient), and under which names -------------


def _idata(**variables: tuple[tuple[str, ...], np.ndarray, dict]) -> InferenceData:
    data = {name: (("chain", "draw", *v[0]), v[1]) for name, v in variables.items()}
    coords = {k: v for _, _, c in variables.values() for k, v in c.items()}
    return InferenceData(posterior=xr.Dataset(data, coords=coords))


@pytest.fixture
def known_draws():
    beta = np.random.default_rng(0).normal([0.2, -0.4], 0.1, size=(2, 300, 2))
    return _idata(
        beta=(("term",), beta, {"term": ["e1", "e2"]}), b1=((), beta[..., 0], {})
    ), beta.reshape(-1, 2)


@pytest.mark.parametrize(
    "family, measure, column, short",
    [
        ("gaussian", "beta", None, None),
        ("bernoulli", "odds ratio", "odds_ratio", "or"),
        ("poisson", "rate ratio", "rate_ratio", "rr"),
        ("negative_binomial", "rate ratio", "rate_ratio", "rr"),
    ],
)
def test_summaries_name_the_scale(known_draws, family, measure, column, short):
    idata, beta = known_draws
    scale = families.effect_scale(family)
    assert scale.measure == measure and scale.ratio == (column is not None)
    table = glm_summary.effects(idata, family, 0.9, "multi")
    assert (table["measure"] == measure).all()
    low, high = np.quantile(beta, [0.05, 0.95], axis=0)
    if column is None:
        assert table["estimate"].to_numpy() == pytest.approx(np.median(beta, axis=0))
        assert table["mean"].to_numpy() == pytest.approx(beta.mean(axis=0))
        assert table["lower"].to_numpy() == pytest.approx(low)
    else:
        assert table["estimate"].to_numpy() == pytest.approx(np.exp(np.median(beta, axis=0)))
        assert table["lower"].to_numpy() == pytest.approx(np.exp(low))
        assert table["upper"].to_numpy() == pytest.approx(np.exp(high))
    assert table["prob_direction"].to_numpy() == pytest.approx([(beta[:, 0] > 0).mean(), 1.0])
    effects = bwqs_summary.index_effects(idata, family, 0.9).iloc[0]
    ratio_columns = {"odds_ratio", "or_lower", "or_upper", "rate_ratio", "rr_lower", "rr_upper"}
    if column is None:
        assert not ratio_columns & set(effects.index)
    else:
        assert effects[column] == pytest.approx(np.exp(np.median(beta[:, 0])))
        assert effects[f"{short}_lower"] == pytest.approx(np.exp(low[0]))
        assert effects[f"{short}_upper"] == pytest.approx(np.exp(high[0]))
        assert not ratio_columns - {column, f"{short}_lower", f"{short}_upper"} & set(effects.index)


# ---- family declarations -------------------------------------------------------------------


def test_family_priors():
    assert set(families.FAMILIES) >= {"poisson", "negative_binomial"}
    assert families.family_priors("poisson") == {}
    alpha = families.family_priors("negative_binomial")
    assert set(alpha) == {"alpha"} and "distribution" in alpha["alpha"]
    with pm.Model() as model:  # made as every prior is made; finite density, positive draws
        variable = prior_lib.create(alpha, "alpha")
    assert np.isfinite(model.point_logps()["alpha"])
    draws_ = pm.draw(variable, 4000, random_seed=1)
    assert (draws_ > 0).all() and 1.5 < np.median(draws_) < 3.5  # median 2.2, weakly informative
    assert set(_glm_priors("negative_binomial")) == {"intercept", "beta", "gamma", "alpha"}
    with pytest.raises(ValueError, match="unknown family 'binomial'"):
        families.family_priors("binomial")


@pytest.mark.parametrize("family", COUNT_FAMILIES)
def test_likelihood_is_the_count_distribution_with_a_log_link(family):
    frame, _ = count_frame(120, family, seed=1)
    design = make_design(frame, "y", family, ["e1"], [], id_column="none")
    model = glm.build_glm(design, design.multi_terms(), _glm_priors(family))
    expected_free = {"intercept", "beta"} | ({"alpha"} if family == "negative_binomial" else set())
    assert {v.name for v in model.free_RVs} == expected_free
    point = {"intercept": 0.2, "beta": np.array([0.3])}
    mu = np.exp(0.2 + 0.3 * design.multi_terms().values[:, 0])
    if family == "poisson":
        expected = stats.poisson.logpmf(design.y, mu).sum()
    else:
        point["alpha_log__"] = np.log(1.5)  # scipy's nbinom(n = alpha, p = alpha / (alpha + mu))
        expected = stats.nbinom.logpmf(design.y, 1.5, 1.5 / (1.5 + mu)).sum()
    assert model.compile_logp(vars=[model["y"]])(point) == pytest.approx(expected)


# ---- validation of count outcomes ----------------------------------------------------------


@pytest.mark.parametrize("family", COUNT_FAMILIES)
@pytest.mark.parametrize("bad, shown", [(2.5, "2.5"), (-1.0, "-1.0")])
def test_count_outcome_must_be_a_non_negative_integer(family, bad, shown):
    frame, _ = count_frame(60, family, seed=2)
    frame.loc[7, "y"] = bad
    with pytest.raises(DataError) as error:
        make_design(frame, "y", family, ["e1", "e2"], [], id_column="none", source="cohort.csv")
    message = str(error.value)
    assert message.startswith("cohort.csv: outcome 'y'"), message
    assert f"'{shown}'" in message and "row(s) 8 " in message, message
    assert "non-negative integer" in message and family in message, message


@pytest.mark.parametrize("family", COUNT_FAMILIES)
def test_whole_floats_are_counts_and_constant_counts_are_refused(family):
    frame, _ = count_frame(60, family, seed=3)
    design = make_design(frame, "y", family, ["e1"], [], id_column="none")  # y stored as floats
    assert design.y.dtype == np.int64 and (design.y == frame["y"].to_numpy()).all()
    with pytest.raises(DataError, match="outcome 'y' is constant"):
        make_design(frame.assign(y=0.0), "y", family, ["e1"], [], id_column="none")
