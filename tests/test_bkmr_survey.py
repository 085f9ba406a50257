"""BKMR with a survey design: the weighted pseudo-likelihood's per-person terms, h at the data
drawn with each summary's points, every summary rescaled to its jackknife design variance about
its median, beta's jackknife variance against the linear sandwich (slow), and a run end to
end on a user's table."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from bayesmetal import survey_adjust, survey_influence
from bayesmetal.arviz_api import from_chains, load_idata, with_group
from bayesmetal.design import Design, make_design
from bayesmetal.models.bkmr import BkmrSpec
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.summaries import bkmr as summary
from bayesmetal.survey_design import SurveyWeights
from bayesmetal.workflow import fit_design

CHAINS, DRAWS = 2, 300


def survey_design(n: int, seed: int, clusters: int, cluster_sd: float = 1.0) -> Design:
    """Three log-normal exposures, age, and y = 0.5 tanh(log x1) + 0.3 age + u + e; with
    `clusters` < n, PSUs of n / clusters persons (two per stratum) sharing u ~ N(0,
    cluster_sd) in both age and y, so that the design matters for age's coefficient; with
    clusters = n, one stratum of single-person PSUs (simple random sampling)."""
    rng = np.random.default_rng(seed)
    logs = rng.standard_normal((n, 3))
    frame = pd.DataFrame(np.exp(logs), columns=["x1", "x2", "x3"])
    psu = np.arange(n) % clusters
    clustered = clusters < n
    u = rng.normal(0, cluster_sd if clustered else 0.0, clusters)[psu]
    frame["age"] = rng.standard_normal(n) + u
    frame["y"] = 0.5 * np.tanh(logs[:, 0]) + 0.3 * frame["age"] + u + rng.standard_normal(n)
    psu_stratum = np.arange(clusters) // 2 if clustered else np.zeros(clusters, dtype=int)
    weights = rng.uniform(0.5, 2.0, n)
    survey = SurveyWeights(
        weights * n / weights.sum(), psu_stratum[psu], psu, psu_stratum, label="toy"
    )
    return make_design(
        frame, "y", "gaussian", ["x1", "x2", "x3"], ["age"], id_column="none", survey=survey
    )


def random_posterior(design: Design, knots: np.ndarray, seed: int) -> summary.HPosterior:
    """CHAINS x DRAWS draws of the BKMR parameters near a plausible posterior (not a fit: the
    algebra of the summaries is what is checked)."""
    rng = np.random.default_rng(seed)
    shape = (CHAINS, DRAWS)
    draws = {
        "beta": rng.normal(0.3, 0.05, (*shape, 1)),
        "lambda": rng.gamma(20, 0.05, shape),
        "r": rng.gamma(20, 0.01, (*shape, 3)),
        "sigma_sq": rng.gamma(50, 0.02, shape),
    }
    coords = {"exposure": list(design.exposures), "coef": ["age"]}
    idata = from_chains(draws, coords, {"beta": ["coef"], "r": ["exposure"]})
    return summary.h_posterior(idata, design, CHAINS * DRAWS, knots, seed=seed)


@pytest.fixture(scope="module")
def case() -> tuple[Design, summary.HPosterior]:
    design = survey_design(120, seed=1, clusters=24)
    return design, random_posterior(design, design.z[:12], seed=2)


def test_draws_are_taken_alike_from_every_chain_under_a_design():
    flat = summary._evenly(4, 1000, 2000, by_chain=True)
    assert len(flat) == 2000
    assert np.array_equal(flat.reshape(4, -1) % 1000, np.tile(np.arange(0, 1000, 2), (4, 1)))
    assert np.array_equal(summary._evenly(4, 10, 200, by_chain=True), np.arange(40))


def test_weighted_loglik_is_each_persons_weighted_normal_log_density(case):
    design, post = case
    h = np.random.default_rng(3).normal(0, 0.3, (len(post.lam), design.n))
    got = summary.weighted_loglik(post, h)
    s, i = 17, 5
    mean = h[s, i] + design.X[i] @ post.beta[s]
    expected = design.survey.weights[i] * stats.norm.logpdf(
        design.y[i], mean, np.sqrt(post.sigma_sq[s])
    )
    assert got.shape == (len(post.lam), design.n) and got[s, i] == pytest.approx(expected)


def test_h_at_the_data_is_drawn_with_the_summary_points(case):
    """Persons 0-3 asked for as new points: the h the log-likelihood was computed from is,
    at those persons, the very draw of the summary (the joint draw of the design's
    covariances), not another draw from the same conditional."""
    design, post = case
    samples = summary.sample_h_new(post, design.z[:4], seed=5)
    sigma_sq = post.sigma_sq[:, None]
    loglik = samples.design.loglik[:, :4] / design.survey.weights[:4]
    squared = -2 * sigma_sq * (loglik + 0.5 * np.log(2 * np.pi * sigma_sq))
    target = np.stack([post.target(s)[:4] for s in range(len(post.lam))])
    assert np.allclose(squared, (target - samples.draw) ** 2)
    # with knots, the same e ~ N(0, I_k) per draw: the summary's draws are those it has
    # without the design, which only adds what rescales them
    unweighted = summary.sample_h_new(replace(post, survey=None), design.z[:4], seed=5)
    assert unweighted.design is None and np.array_equal(unweighted.draw, samples.draw)


def test_each_summary_gets_its_jackknife_variance_about_its_median(case):
    """The overall-risk rows: the reported SD is the jackknife's design SD of that contrast
    (normal intervals: no t multipliers), the median stays and the mean's distance from it is
    scaled alike; a row whose variance estimate is not positive keeps its spread and says
    so."""
    design, post = case
    post = replace(post, survey=replace(post.survey, intervals="normal"))
    samples = summary.sample_h_new(post, np.quantile(design.z, [0.5, 0.25, 0.75], axis=0), 7)
    contrast = samples.map(summary._vs_first)
    variance = survey_influence.design_variance(
        contrast.draw.reshape(CHAINS, DRAWS, -1),
        samples.design.loglik.reshape(CHAINS, DRAWS, -1),
        post.survey,
    )
    out = summary._summarise(contrast)
    median = np.median(contrast.draw, axis=0)
    assert np.allclose(out["median"], median)
    positive = variance > 0
    assert positive.any()
    assert np.allclose(out["sd"][positive], np.sqrt(variance[positive]))
    spread = contrast.draw.std(axis=0, ddof=1)
    factor = np.where(positive, np.sqrt(np.abs(variance)) / spread, 1.0)
    assert np.allclose(out["mean"], median + factor * (contrast.mean.mean(0) - median))
    assert np.allclose(out["sd"][~positive], spread[~positive])
    kept = [summary.UNADJUSTED_NOTE in note for note in out["note"]]
    assert kept == list(~positive)


def test_h_is_conditioned_on_the_pseudo_posterior_not_the_adjusted_beta(case):
    design, _ = case
    rng = np.random.default_rng(8)
    draws = {
        "beta": rng.normal(0.3, 0.05, (2, 50, 1)),
        "lambda": rng.gamma(20, 0.05, (2, 50)),
        "r": rng.gamma(20, 0.01, (2, 50, 3)),
        "sigma_sq": rng.gamma(50, 0.02, (2, 50)),
    }
    coords = {"exposure": list(design.exposures), "coef": ["age"]}
    dims = {"beta": ["coef"], "r": ["exposure"]}
    pseudo = from_chains(draws, coords, dims)
    adjusted = from_chains(draws | {"beta": draws["beta"] * 3}, coords, dims)
    idata = with_group(pseudo, "posterior", adjusted.posterior, keep_as="pseudo_posterior")
    post = summary.h_posterior(idata, design, 100, design.z[:12])
    assert np.allclose(post.beta, draws["beta"].reshape(100, 1))
    assert np.allclose(survey_adjust.unadjusted(idata).posterior["beta"], draws["beta"])


# beta's jackknife variance against the design-based sandwich of the linear regression
# y ~ 1 + age + log exposures (weighted least squares, Taylor linearisation over the same
# PSUs), times the t variance df / (df - 2) of the adjusted draws. They estimate the same
# variance of age's coefficient when h is nearly linear: measured over three seeds, 0.95-0.97
# under simple random sampling and 0.77-0.94 with clusters of 10 (design effect about 3);
# the bounds allow for the jackknife's Monte Carlo error from 2,000 draws and for the linear
# model's misfit of h. One case runs in the default suite (about 10 s), the others are slow.
@pytest.mark.parametrize(
    "clusters, seed, bounds",
    [
        pytest.param(400, 1, (0.85, 1.15), marks=pytest.mark.slow),
        pytest.param(40, 1, (0.7, 1.3), marks=pytest.mark.slow),
        (40, 2, (0.7, 1.3)),
    ],
)
def test_beta_jackknife_variance_is_the_linear_sandwich(clusters, seed, bounds):
    design = survey_design(400, seed, clusters)
    sampler = SamplerSpec(chains=2, tune=300, draws=1000, progressbar=False, seed=seed)
    _, idatas = fit_design(design, BkmrSpec(name="bkmr", knots=20), sampler)
    idata = idatas["bkmr"]
    X = np.column_stack([np.ones(design.n), design.X, design.log_exposures])
    w = design.survey.weights
    bread = np.linalg.inv(X.T @ (w[:, None] * X))
    residuals = design.y - X @ bread @ X.T @ (w * design.y)
    sandwich = bread @ design.survey.total_covariance((w * residuals)[:, None] * X) @ bread
    df = design.survey.t_df
    expected = sandwich[1, 1] * (df / (df - 2) if df is not None else 1.0)
    ratio = float(idata.posterior["beta"].var()) / expected
    assert bounds[0] < ratio < bounds[1], ratio
    clustering = float(idata.posterior["beta"].var() / idata.pseudo_posterior["beta"].var())
    assert clustering > 1.5 if clusters < design.n else clustering < 1.3, clustering


def test_survey_bkmr_run_end_to_end(tmp_path):
    """fit.py on a user's table with a survey design and BKMR (the Gibbs engine, short
    chains): beta adjusted with the pseudo-posterior kept, the method in the report,
    summaries marked, and --summarise from the run folder alone."""
    from bayesmetal.cli import fit_main

    _table(tmp_path)
    config = {
        "table": {
            "path": str(tmp_path / "data.csv"),
            "outcome": "y",
            "family": "gaussian",
            "exposures": ["x1", "x2", "x3"],
            "covariates": ["age"],
            "weight": "w",
        },
        "survey": {"strata": "stratum", "psu": "cluster"},
        "model": {
            "name": "bkmr",
            "knots": 10,
            "summaries": {"draws_for_design": 200, "ngrid": 5},
        },
        "sampler": {"chains": 2, "tune": 50, "draws": 100, "seed": 3, "progressbar": False},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    assert fit_main([str(path), "--out", str(out)]) == 0
    idata = load_idata(str(out / "idata.nc"))
    assert "pseudo_posterior" in idata.groups()
    beta, pseudo = idata.posterior["beta"], idata.pseudo_posterior["beta"]
    # scaled about the median: it stays (up to the two middle draws' own t multipliers)
    shift = beta.median(("chain", "draw")) - pseudo.median(("chain", "draw"))
    assert np.all(np.abs(shift) < 0.01 * pseudo.std(("chain", "draw")))
    assert np.allclose(idata.posterior["lambda"], idata.pseudo_posterior["lambda"])
    page = (out / "report.html").read_text()
    assert "Bayesian infinitesimal jackknife over PSUs" in page
    assert "t intervals on 6 design df" in page
    risk = pd.read_csv(out / "overall_risk.csv")
    assert np.isfinite(risk["sd"]).all() and len(risk) == len(summary.OVERALL_QS)
    assert "none beside this run in " in page and "--set survey=false" in page  # none yet
    first = (out / "overall_risk.csv").read_text()
    # the unweighted twin beside it: --summarise puts both side by side in the report
    unweighted = ["--out", str(tmp_path / "unweighted"), "--set", "survey=false"]
    assert fit_main([str(path), *unweighted]) == 0
    assert fit_main(["--summarise", str(out)]) == 0
    assert (out / "overall_risk.csv").read_text() == first, "the same seed, the same table"
    side = pd.read_csv(out / "weighted_vs_unweighted.csv")
    assert set(side["quantity"]) == {"PIP", "overall risk"}
    assert list(side.columns[-2:]) == ["unweighted", "weighted (design-adjusted)"]
    risk_rows = side[side["quantity"] == "overall risk"]
    assert len(risk_rows) == len(summary.OVERALL_QS)
    weighted_median = risk_rows["weighted (design-adjusted)"].str.split(" ").str[0].astype(float)
    assert np.allclose(weighted_median, risk["estimate"], rtol=2e-3, atol=1e-6)
    page = (out / "report.html").read_text()
    assert "weighted vs unweighted" in page and "unweighted/ beside this run" in page
    assert (out / "weighted_vs_unweighted.png").is_file()
    assert (out / "weighted_vs_unweighted_curves.png").is_file()
    # --extend continues the chains as sampled (the pseudo-posterior), then adjusts the whole
    more = tmp_path / "more"
    extend = [str(path), "--extend", str(out), "--out", str(more), "--set", "sampler.draws=50"]
    assert fit_main(extend) == 0
    extended = load_idata(str(more / "idata.nc"))
    assert extended.pseudo_posterior.sizes["draw"] == 150
    assert np.array_equal(extended.pseudo_posterior["beta"][:, :100], pseudo)


def _table(folder: Path) -> None:
    """data.csv: 120 persons in 6 strata of 2 PSUs, uneven weights."""
    design = survey_design(120, seed=4, clusters=12)
    frame = pd.DataFrame(design.concentrations, columns=list(design.exposures))
    frame["age"] = design.X[:, 0]
    frame["y"] = design.y
    frame["w"] = design.survey.weights
    frame["stratum"] = design.survey.stratum
    frame["cluster"] = design.survey.psu % 2
    frame.to_csv(folder / "data.csv", index=False)
