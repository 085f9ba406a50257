"""Quantile g-computation (qgcomp): the scores are qgcomp's quantize(), known psi and weights
are recovered, and with weak priors the posterior agrees with the frequentist qgcomp
(statsmodels: OLS for qgcomp.glm.noboot; logistic regression + g-computation + MSM for
qgcomp.glm.boot's point estimates). R is not reachable here, so the reference is qgcomp's
published definitions implemented with statsmodels.

Tolerances: with weak priors the posterior mean differs from the MLE by prior shrinkage
(negligible: prior SD 2.5 against SEs of 0.03-0.1) and Monte Carlo error, SD / sqrt(ESS); the
tests require ESS >= 300, so that error is under 0.06 posterior SD and a tolerance of 0.15-0.25
SD (or SE) leaves room for the O(1/sqrt(n)) skew of logistic posteriors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from matplotlib import pyplot as plt
from matplotlib.colors import to_hex

from bayesmetal import plots, workflow
from bayesmetal.arviz_api import convergence_table
from bayesmetal.config import load_config
from bayesmetal.design import make_design
from bayesmetal.errors import ConfigError
from bayesmetal.exposures import quantile_scores
from bayesmetal.models import qgcomp
from bayesmetal.models.contract import Fitted
from bayesmetal.models.qgcomp import QgcompSpec
from bayesmetal.run_schema import SamplerSpec, SummarySpec
from bayesmetal.summaries.posterior import draws

from .conftest import CONFIGS
from .fakesampler import use_fake_sampler
from .toydata import base_config, glm_frame

# statsmodels warns that a log link leaves the binomial domain; qgcomp's rr = TRUE MSM is that
pytestmark = pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.DomainWarning")
SAMPLER = SamplerSpec(chains=2, tune=500, draws=500, seed=17, progressbar=False)
SETTINGS = SummarySpec()


def r_quantize(values: np.ndarray, q: int) -> np.ndarray:
    """qgcomp::quantize (R/base_utility.R): br <- unique(quantile(x, probs = seq(0, 1, by =
    1/q))) (type 7 = numpy's linear), br[1] <- -1e64, br[length(br)] <- 1e64, then
    cut(x, br, labels = FALSE, include.lowest = TRUE) - 1 (intervals closed on the right)."""
    probs = np.arange(q + 1) * (1 / q)  # R's seq(0, 1, by = 1/q) is from + (0:n) * by
    breaks = np.unique(np.quantile(values, probs))
    breaks[0], breaks[-1] = -1e64, 1e64
    return np.searchsorted(breaks[1:-1], values, side="left")


def exposures_frame(n: int, m: int, seed: int) -> pd.DataFrame:
    """m correlated log-normal exposures, a numeric and a categorical covariate, an id."""
    rng = np.random.default_rng(seed)
    logs = rng.multivariate_normal(np.zeros(m), 0.3 + 0.7 * np.eye(m), n)
    frame = pd.DataFrame(np.exp(logs), columns=[f"x{j + 1}" for j in range(m)])
    frame["age"] = rng.uniform(8, 19, n)
    frame["sex"] = pd.Categorical(rng.choice(["male", "female"], n), ["male", "female"])
    frame["SEQN"] = np.arange(n)
    return frame


def scores_of(frame: pd.DataFrame, m: int, q: int = 4) -> np.ndarray:
    return np.column_stack([quantile_scores(frame[f"x{j + 1}"], q)[0] for j in range(m)])


def design_for(frame: pd.DataFrame, m: int, family: str, q: int = 4):
    exposures = [f"x{j + 1}" for j in range(m)]
    return make_design(frame, "y", family, exposures, ["age", "sex"], q)


def fit(design, spec: QgcompSpec, priors=None):
    fits, idatas = workflow.fit_design(design, spec, SAMPLER, priors)
    idata = idatas["qgcomp"]
    ess = convergence_table(idata, ["psi"])["ess_bulk"].min()
    assert ess >= 300, f"ESS of psi {ess:.0f}: the tolerances below assume >= 300"
    return fits, idatas, qgcomp.summarise(Fitted(fits, idatas, design, SETTINGS, 1), spec)


def row(table: pd.DataFrame, parameter: str, model: str) -> pd.Series:
    found = table[(table["parameter"] == parameter) & (table["model"] == model)]
    assert len(found) == 1, (parameter, model, table)
    return found.iloc[0]


# --- quantisation ------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [2, 3, 4, 5, 10])
def test_scores_are_qgcomps_quantize_for_continuous_exposures(q):
    rng = np.random.default_rng(q)
    for n in (57, 200, 1001):  # odd and even n: interpolated and exact quantiles
        values = np.exp(rng.normal(size=n))
        scores, _ = quantile_scores(pd.Series(values), q)
        np.testing.assert_array_equal(scores.to_numpy(), r_quantize(values, q))


def test_scores_are_qgcomps_quantize_with_ties_above_the_minimum():
    rng = np.random.default_rng(3)
    values = np.exp(rng.normal(size=400))
    low, high, tie = np.quantile(values, [0.3, 0.9, 0.6])
    values[(values > low) & (values < high)] = tie  # the median and Q3 tie: one cut point
    scores, edges = quantile_scores(pd.Series(values), 4)
    np.testing.assert_array_equal(scores.to_numpy(), r_quantize(values, 4))
    assert len(edges) < 3


def test_scores_are_qgcomps_quantize_with_ties_at_the_minimum():
    """More than 1/q at the LOD: R drops the cut point at the minimum (children_bmd_2017's Cd
    and Hg); bayesmetal kept it and scored the LOD block apart from the rest of Q1."""
    rng = np.random.default_rng(4)
    values = np.exp(rng.normal(size=400))
    values[:140] = values.min()  # 35% at the LOD: the 25th percentile is the minimum
    scores, _ = quantile_scores(pd.Series(values), 4)
    np.testing.assert_array_equal(scores.to_numpy(), r_quantize(values, 4))


# --- the MSM solver against statsmodels ----------------------------------------------------------


def stacked_glm(expected: np.ndarray, degree: int, family) -> np.ndarray:
    """qgcomp's MSM as qgcomp fits it: a glm on the stacked per-person predictions (here 50
    people per k sharing the k's average, which is what the estimating equations see)."""
    k = np.repeat(np.arange(len(expected), dtype=float), 50)
    y = np.repeat(expected, 50)
    basis = np.column_stack([k**p for p in range(degree + 1)])
    start = np.linalg.lstsq(basis, np.log(y) if family is not None else y, rcond=None)[0]
    if family is None:
        return sm.OLS(y, basis).fit().params
    return sm.GLM(y, basis, family=family).fit(start_params=start, tol=1e-12).params


@pytest.mark.parametrize("degree", [1, 2])
def test_msm_solver_matches_statsmodels_on_stacked_predictions(degree):
    rng = np.random.default_rng(degree)
    risks = np.sort(rng.uniform(0.05, 0.4, size=(6, 4)), axis=1)  # 6 'draws', q = 4
    counts = rng.uniform(0.5, 4.0, size=(6, 4))
    binomial = sm.families.Binomial
    log = sm.families.links.Log()
    cases = [
        ("log_binomial", risks, binomial(link=log)),
        ("logit", risks, binomial()),
        ("identity", risks, None),
        ("log_poisson", counts, sm.families.Poisson()),
    ]
    for msm, expected, family in cases:
        ours = qgcomp.fit_msm(expected, degree, msm)
        theirs = np.array([stacked_glm(e, degree, family) for e in expected])
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-8, err_msg=msm)


# --- gaussian: recovery and qgcomp.noboot ---------------------------------------------------------

TRUE_BETA = np.array([0.30, 0.15, -0.20, -0.10, 0.05])  # psi 0.2; pos.psi 0.5, neg.psi -0.3


def qgcomp_formula(beta: np.ndarray) -> dict[str, float]:
    """qgcomp.glm.noboot's weights, written as its R code: pos.coef <- which(wcoef > 0),
    neg.coef <- which(wcoef <= 0), weights = abs(coef) / sum(abs(coef)) on each side."""
    weights = {}
    pos = [j for j in range(len(beta)) if beta[j] > 0]
    neg = [j for j in range(len(beta)) if beta[j] <= 0]
    for side in (pos, neg):
        total = sum(abs(beta[j]) for j in side)
        for j in side:
            weights[f"x{j + 1}"] = abs(beta[j]) / total
    return weights


def noboot(design) -> dict[str, object]:
    """qgcomp.glm.noboot (gaussian): OLS on scores + covariates; psi = sum of the exposure
    coefficients, its SE from their covariance (qgcomp's se_comb)."""
    m = len(design.exposures)
    ols = sm.OLS(design.y, sm.add_constant(np.column_stack([design.quantiles, design.X]))).fit()
    beta = ols.params[1 : m + 1]
    cov = ols.cov_params()[1 : m + 1, 1 : m + 1]
    return {
        "beta": beta,
        "psi": beta.sum(),
        "se": np.sqrt(cov.sum()),
        "weights": qgcomp_formula(beta),
    }


def test_gaussian_recovers_psi_and_weights_and_agrees_with_qgcomp_noboot():
    m, n = len(TRUE_BETA), 1000
    frame = exposures_frame(n, m, seed=31)
    rng = np.random.default_rng(32)
    eta = 1.0 + scores_of(frame, m) @ TRUE_BETA + 0.05 * (frame["age"] - 13)
    frame["y"] = eta + 0.3 * (frame["sex"] == "female") + rng.normal(0, 1.0, n)
    design = design_for(frame, m, "gaussian")
    _, idatas, summary = fit(design, QgcompSpec(name="qgcomp"))
    psi, weights = summary.tables["psi"], summary.tables["weights"].set_index("exposure")
    estimate = row(psi, "psi", "conditional")

    # recovery of the known truth
    assert abs(estimate["mean"] - TRUE_BETA.sum()) < 4 * estimate["sd"]
    assert estimate["lower"] < TRUE_BETA.sum() < estimate["upper"]
    true_weights = qgcomp_formula(TRUE_BETA)
    for name, weight in true_weights.items():
        assert weights.loc[name, "side"] == (
            "positive" if TRUE_BETA[int(name[1]) - 1] > 0 else "negative"
        )
        assert abs(weights.loc[name, "weight"] - weight) < 4 * weights.loc[name, "weight_sd"], name
    assert abs(row(psi, "pos.psi", "per draw")["plugin"] - 0.5) < 4 * estimate["sd"]
    assert abs(row(psi, "neg.psi", "per draw")["plugin"] + 0.3) < 4 * estimate["sd"]

    # plug-in weights are qgcomp's formula applied to the posterior means
    means = draws(idatas["qgcomp"], "beta").mean(axis=0)
    for name, weight in qgcomp_formula(means).items():
        assert weights.loc[name, "weight"] == pytest.approx(weight, abs=1e-12)
    positive = means[means > 0].sum()
    assert row(psi, "pos.psi", "per draw")["plugin"] == pytest.approx(positive, abs=1e-12)

    # agreement with qgcomp.glm.noboot (OLS) under the weak default priors
    reference = noboot(design)
    assert abs(estimate["mean"] - reference["psi"]) < 0.15 * reference["se"]
    assert estimate["sd"] == pytest.approx(reference["se"], rel=0.1)
    for name, weight in reference["weights"].items():
        assert abs(weights.loc[name, "weight"] - weight) < 0.25 * weights.loc[name, "weight_sd"]
    # g-computation with an identity link is the conditional psi exactly
    curve = summary.tables["gcomp"]
    assert np.diff(curve["mean"]).mean() == pytest.approx(estimate["mean"], rel=1e-9)


# --- binary: conditional OR, marginal RR / OR / RD against frequentist g-computation -------------

BINARY_BETA = np.array([0.30, 0.20, -0.15, 0.10])


def frequentist_gcomp(design) -> dict[str, float]:
    """qgcomp.glm.boot's point estimates with statsmodels: logistic regression, each person's
    predicted risk with every exposure at k, and the MSMs fitted on the stacked predictions:
    log-binomial (rr = TRUE), logistic (rr = FALSE), linear (risk difference)."""
    m = len(design.exposures)
    logit = sm.Logit(design.y, sm.add_constant(np.column_stack([design.quantiles, design.X])))
    mle = logit.fit(disp=0)
    beta = mle.params[1 : m + 1]
    base = mle.params[0] + design.X @ mle.params[m + 1 :]
    k = np.arange(design.n_quantiles, dtype=float)
    predicted = 1 / (1 + np.exp(-(base[None, :] + k[:, None] * beta.sum())))  # (q, n)
    stacked_k = np.repeat(k, design.n)
    basis = sm.add_constant(stacked_k)
    ya = predicted.ravel()
    binomial = sm.families.Binomial
    start = [np.log(ya.mean()), 0.0]
    rr = sm.GLM(ya, basis, family=binomial(link=sm.families.links.Log())).fit(start_params=start)
    return {
        "psi": beta.sum(),
        "se": np.sqrt(mle.cov_params()[1 : m + 1, 1 : m + 1].sum()),
        "log_rr": rr.params[1],
        "log_or_marginal": sm.GLM(ya, basis, family=binomial()).fit().params[1],
        "rd": sm.OLS(ya, basis).fit().params[1],
    }


@pytest.mark.slow  # seconds of MCMC: the slow step
def test_binary_or_and_marginal_rr_rd_agree_with_frequentist_gcomputation():
    m, n = len(BINARY_BETA), 2000
    frame = exposures_frame(n, m, seed=41)
    rng = np.random.default_rng(42)
    # strong covariate effects: the marginal (averaged) risks differ from those at mean covariates
    eta = -1.8 + scores_of(frame, m) @ BINARY_BETA + 0.3 * (frame["age"] - 13)
    eta += 1.5 * (frame["sex"] == "female")
    frame["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)
    design = design_for(frame, m, "bernoulli")
    _, _, summary = fit(design, QgcompSpec(name="qgcomp"))
    psi = summary.tables["psi"]
    reference = frequentist_gcomp(design)
    conditional = row(psi, "psi", "conditional")
    assert conditional["ratio_measure"] == "odds ratio"
    assert conditional["ratio"] == pytest.approx(np.exp(conditional["median"]))
    assert abs(conditional["mean"] - reference["psi"]) < 0.2 * conditional["sd"]
    assert conditional["sd"] == pytest.approx(reference["se"], rel=0.15)
    assert conditional["lower"] < BINARY_BETA.sum() < conditional["upper"]
    for model, key in [
        ("msm (rr = TRUE)", "log_rr"),
        ("msm (rr = FALSE)", "log_or_marginal"),
        ("msm (risk difference)", "rd"),
    ]:
        marginal = row(psi, "psi", model)
        assert abs(marginal["mean"] - reference[key]) < 0.2 * marginal["sd"], (model, marginal)
    rr = row(psi, "psi", "msm (rr = TRUE)")
    assert rr["ratio_measure"] == "risk ratio" and rr["ratio"] == pytest.approx(
        np.exp(rr["median"])
    )
    # a marginal RR lies between 1 and the conditional OR (risks are not rare here)
    assert 0 < rr["mean"] < conditional["mean"]
    curve = summary.tables["gcomp"]
    assert (curve["measure"] == "risk").all() and np.all(np.diff(curve["mean"]) > 0)


# --- degree 2: a U-shaped joint effect --------------------------------------------------------


@pytest.mark.slow  # a recovery test: 20-25 s of MCMC
def test_degree_two_finds_a_u_shaped_joint_effect():
    m, n = 3, 600
    frame = exposures_frame(n, m, seed=51)
    rng = np.random.default_rng(52)
    scores = scores_of(frame, m)
    # per exposure -0.45 q + 0.15 q^2: joint psi1 = -1.35, psi2 = 0.45, minimum at k = 1.5
    frame["y"] = 2.0 + scores @ np.full(m, -0.45) + (scores**2) @ np.full(m, 0.15)
    frame["y"] += rng.normal(0, 1.0, n)
    design = design_for(frame, m, "gaussian")
    _, _, summary = fit(design, QgcompSpec(name="qgcomp", degree=2))
    psi = summary.tables["psi"]
    psi1, psi2 = row(psi, "psi1", "msm"), row(psi, "psi2", "msm")
    assert psi2["lower"] > 0 and abs(psi2["mean"] - 0.45) < 4 * psi2["sd"]
    assert psi1["upper"] < 0 and abs(psi1["mean"] + 1.35) < 4 * psi1["sd"]
    # identity link: the MSM reproduces the conditional polynomial exactly
    assert psi1["mean"] == pytest.approx(row(psi, "psi1", "conditional")["mean"], rel=1e-9)
    curve = summary.tables["gcomp"]["mean"].to_numpy()
    assert curve[1] < curve[0] and curve[2] < curve[3]  # U-shaped
    assert "weights" not in summary.tables  # qgcomp: weights are undefined for a non-linear fit


def test_poisson_rate_ratio_and_log_link_msm_equals_conditional_psi():
    m, n = 3, 600
    frame = exposures_frame(n, m, seed=61)
    rng = np.random.default_rng(62)
    eta = 0.5 + scores_of(frame, m) @ np.array([0.15, -0.05, 0.1])
    frame["y"] = rng.poisson(np.exp(eta))
    design = design_for(frame, m, "poisson")
    fits, idatas, summary = fit(design, QgcompSpec(name="qgcomp"))
    conditional = row(summary.tables["psi"], "psi", "conditional")
    assert conditional["ratio_measure"] == "rate ratio"
    assert conditional["ratio_lower"] < np.exp(0.2) < conditional["ratio_upper"]
    _, expected = qgcomp.gcomp_draws(idatas["qgcomp"], design, QgcompSpec(name="qgcomp"), 1)
    slope = qgcomp.fit_msm(expected, 1, "log_poisson")[:, 1]
    np.testing.assert_allclose(slope, draws(idatas["qgcomp"], "psi"), rtol=1e-8, atol=1e-10)


# --- configuration and workflow plumbing ----------------------------------------------------------


def write_config(folder, model: dict, family: str = "gaussian") -> str:
    frame, _ = glm_frame(120, family, seed=8)
    frame.to_csv(folder / "cohort.csv", index=False)
    config = base_config(family=family)
    config["model"] = model
    path = folder / "qgcomp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_shipped_qgcomp_configs_load():
    lumbar = load_config(CONFIGS / "qgcomp_lumbar.yaml")
    assert isinstance(lumbar.model, QgcompSpec) and lumbar.model.quantile_count() == 4
    assert lumbar.analysis.outcome == "lumbar_bmd"
    op = load_config(CONFIGS / "qgcomp_op.yaml")
    assert op.model.name == "qgcomp" and op.analysis.outcome == "osteoporosis"


@pytest.mark.parametrize(
    "model, message",
    [
        ({"name": "qgcomp", "degre": 2}, r"degre"),
        ({"name": "qgcomp", "degree": 3}, r"degree"),
        ({"name": "qgcomp", "quantiles": 2, "degree": 2}, r"at least 3 quantiles"),
        ({"name": "qgcomp", "summaries": {"gcomp_draw": 10}}, r"gcomp_draw"),
    ],
)
def test_bad_qgcomp_config_is_a_named_error(tmp_path, model, message):
    path = write_config(tmp_path, model)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.parametrize(
    "family, degree, tables",
    [
        ("gaussian", 1, {"psi", "weights", "gcomp"}),
        ("bernoulli", 1, {"psi", "weights", "gcomp"}),
        ("gaussian", 2, {"psi", "gcomp"}),
    ],
)
def test_workflow_runs_a_qgcomp_config(tmp_path, monkeypatch, family, degree, tables):
    use_fake_sampler(monkeypatch)
    model = {"name": "qgcomp", "degree": degree, "summaries": {"gcomp_draws": 25}}
    config = load_config(write_config(tmp_path, model, family))
    assert config.model.degree == degree
    plan = workflow.plan(config)
    assert [f.label for f in plan.fits] == ["qgcomp"]
    assert set(plan.priors) >= {"intercept", "beta", "gamma"} | (
        {"beta2"} if degree == 2 else set()
    )
    results = workflow.summarise(plan, workflow.sample_fits(plan))
    assert set(results.tables) == tables | {"covariates"}
    assert {"gcomp", "rank_qgcomp"} <= set(results.figures)
    assert ("weights" in results.figures) == (degree == 1)
    psi = results.tables["psi"]
    assert psi[["mean", "sd", "lower", "upper"]].notna().all().all()
    if family == "bernoulli":
        assert {"msm (rr = TRUE)", "msm (rr = FALSE)", "msm (risk difference)"} <= set(psi["model"])
    if degree == 1:
        weights = results.tables["weights"]
        for side in ("positive", "negative"):
            part = weights.loc[weights["side"] == side, "weight"]
            assert part.empty or part.sum() == pytest.approx(1.0)
    assert "psi" in set(results.diagnostics["parameter"])


def test_qgcomp_figures_use_exposure_colours_and_name_the_outcome_unit(tmp_path, monkeypatch):
    use_fake_sampler(monkeypatch)
    path = write_config(tmp_path, {"name": "qgcomp", "summaries": {"gcomp_draws": 20}})
    config = yaml.safe_load(path.read_text())
    config["table"]["units"] = {"y": "g/cm^2", "e1": "ug/dL"}
    path.write_text(yaml.safe_dump(config))
    plan = workflow.plan(load_config(path))
    results = workflow.summarise(plan, workflow.sample_fits(plan))
    gcomp = results.figures["gcomp"].axes[0]
    assert gcomp.get_ylabel() == "mean outcome of y (g/cm²)"
    colours = plots.exposure_colours(plan.design.exposures)
    weights = results.tables["weights"]
    drawn = {}
    for ax, side in zip(results.figures["weights"].axes, ("negative", "positive"), strict=True):
        names = weights.loc[weights["side"] == side].sort_values("weight")["exposure"]
        bars = ax.patches[: len(names)]  # barh's bars, in the order drawn
        drawn |= {n: to_hex(b.get_facecolor()) for n, b in zip(names, bars, strict=True)}
    assert drawn == {n: colours[n] for n in weights["exposure"]}
    plt.close("all")


def test_g_computation_averages_over_the_survey_weights():
    """With survey weights the expected outcome at each joint quantile is the weighted
    (population) average of the persons' predictions; without, the plain sample mean."""
    from bayesmetal.models.qgcomp import expected_by_quantile

    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 2))
    weights = rng.uniform(0.2, 3, 50)
    args = (np.array([0.1]), np.array([[0.5, -1.0]]), np.array([0.3]), None, X, "bernoulli", 4)
    eta = 0.1 + X @ np.array([0.5, -1.0])
    for k in range(4):
        p = 1 / (1 + np.exp(-(eta + 0.3 * k)))
        assert expected_by_quantile(*args, weights)[0, k] == pytest.approx(
            np.average(p, weights=weights)
        )
        assert expected_by_quantile(*args)[0, k] == pytest.approx(p.mean())
