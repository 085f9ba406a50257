"""BKMR summaries mean what they say: Rao-Blackwellised estimates, probabilities averaged
over persons, and the PyMC probit posterior (h at the data) predicted end to end."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

from bayesmetal.arviz_api import from_chains
from bayesmetal.bkmr.kernel import kernel
from bayesmetal.design import Design, make_design
from bayesmetal.models.bkmr import H_JITTER
from bayesmetal.summaries import bkmr as summary

DRAWS = 6


def tiny_design(n: int, family: str, seed: int) -> Design:
    """Three log-normal exposures, one covariate, an outcome depending on the first."""
    rng = np.random.default_rng(seed)
    logs = rng.standard_normal((n, 3))
    frame = pd.DataFrame(np.exp(logs), columns=["x1", "x2", "x3"])
    frame["age"] = rng.uniform(0, 1, n)
    latent = logs[:, 0] + 0.5 * frame["age"] + rng.standard_normal(n)
    frame["y"] = (latent > 0) * 1.0 if family == "bernoulli" else latent
    return make_design(frame, "y", family, ["x1", "x2", "x3"], ["age"], id_column="none")


def fixed_draws(design: Design, seed: int, **extra: np.ndarray):
    """An InferenceData of DRAWS fixed draws (one chain) of the BKMR parameters."""
    rng = np.random.default_rng(seed)
    draws = {
        "beta": rng.normal(0.5, 0.2, (1, DRAWS, 1)),
        "lambda": rng.gamma(4, 2, (1, DRAWS)),
        "r": rng.gamma(4, 0.1, (1, DRAWS, 3)),
        **extra,
    }
    if design.family == "gaussian":
        draws["sigma_sq"] = rng.gamma(20, 0.05, (1, DRAWS))
    coords = {"exposure": list(design.exposures), "coef": ["age"], "obs": list(range(design.n))}
    dims = {"beta": ["coef"], "r": ["exposure"], "h": ["obs"], "ystar": ["obs"]}
    return from_chains(draws, coords, dims), draws


def test_estimate_is_the_average_of_conditional_means():
    design = tiny_design(30, "gaussian", seed=1)
    idata, raw = fixed_draws(design, seed=2)
    post = summary.h_posterior(idata, design, DRAWS)
    table = summary.pred_resp_univar(post, ngrid=3, seed=0)
    point = np.quantile(design.z, 0.5, axis=0)
    point[0] = table["z"].iloc[0]
    means = []
    for s in range(DRAWS):  # the conditional mean lam k' (lam K + I)^-1 (y - X beta), directly
        lam, r = raw["lambda"][0, s], raw["r"][0, s]
        resid = design.y - design.X @ raw["beta"][0, s]
        v = lam * kernel(design.z, design.z, r) + np.eye(design.n)
        means.append(lam * kernel(point[None], design.z, r) @ np.linalg.solve(v, resid))
    assert table["mean"].iloc[0] == pytest.approx(np.mean(means), rel=1e-8)
    assert {"estimate", "estimate_is", "sd", "median", "lower", "upper", "note"} <= set(
        table.columns
    )
    assert (table["estimate"] == table["median"]).all() and set(table["estimate_is"]) == {"median"}

    # the estimate does not depend on the seed of the GP draws; the plain draw mean does
    runs = [summary.sample_h_new(post, point[None], seed) for seed in range(20)]
    rao_blackwell = np.array([h.mean.mean(0)[0] for h in runs])
    plain = np.array([h.draw.mean(0)[0] for h in runs])
    assert rao_blackwell.var() < 1e-3 * plain.var()
    assert abs(plain.mean() - rao_blackwell.mean()) < 4 * plain.std() / np.sqrt(len(runs))


def test_probability_averages_over_persons(monkeypatch):
    design = tiny_design(25, "bernoulli", seed=3)
    ystar = np.random.default_rng(4).normal(0, 1, (1, DRAWS, design.n))
    idata, raw = fixed_draws(design, seed=5, ystar=ystar)
    post = summary.h_posterior(idata, design, DRAWS)
    rng = np.random.default_rng(6)
    h = summary.HSamples(
        mean=rng.normal(0, 1, (DRAWS, 4)),
        draw=rng.normal(0, 1, (DRAWS, 4)),
        var=rng.gamma(2, 0.2, (DRAWS, 4)),
    )
    offsets = raw["beta"][0] @ design.X.T  # (S, n): x_i' beta per draw
    direct = ndtr(h.draw[:, :, None] + offsets[:, None, :]).mean(2)
    direct_mean = ndtr((h.mean[:, :, None] + offsets[:, None, :]) / np.sqrt(1 + h.var)[..., None])
    p = summary.probability(post, h)
    assert np.allclose(p.draw, direct) and np.allclose(p.mean, direct_mean.mean(2))
    assert np.abs(p.draw - ndtr(h.draw)).max() > 1e-3  # not Phi(h) at the covariate means
    monkeypatch.setattr(summary, "PERSON_CHUNK_BYTES", 8 * design.n * 3)  # 3 pairs a chunk
    chunked = summary.probability(post, h)
    assert np.array_equal(chunked.draw, p.draw) and np.array_equal(chunked.mean, p.mean)

    # E Phi(h + c) over h ~ N(m, v) is Phi((m + c) / sqrt(1 + v)): the Rao-Blackwellised mean
    z = np.random.default_rng(7).standard_normal(400_000)
    assert ndtr(0.3 + np.sqrt(0.5) * z - 0.1).mean() == pytest.approx(
        ndtr(0.2 / np.sqrt(1.5)), abs=3e-3
    )


def test_pymc_probit_posterior_predicts_h_at_the_data():
    """The PyMC probit model declares h at the data (no y*): the prediction at a data point
    returns that draw's h, up to the model's jitter."""
    design = tiny_design(30, "bernoulli", seed=8)
    _, raw = fixed_draws(design, seed=9)
    rng = np.random.default_rng(10)
    h = np.stack(
        [
            rng.multivariate_normal(
                np.zeros(design.n),
                lam * kernel(design.z, design.z, r) + H_JITTER * np.eye(design.n),
            )
            for lam, r in zip(raw["lambda"][0], raw["r"][0], strict=True)
        ]
    )
    idata, _ = fixed_draws(design, seed=9, h=h[None])
    post = summary.h_posterior(idata, design, DRAWS)
    assert post.probit and post.h_data is not None and post.noise == H_JITTER
    pred = summary.sample_h_new(post, design.z[:5], seed=0)
    assert np.allclose(pred.mean, h[:, :5], atol=10 * np.sqrt(H_JITTER))
    assert np.allclose(pred.draw, h[:, :5], atol=10 * np.sqrt(H_JITTER))
    assert (pred.var <= 2 * H_JITTER).all()
    overall = summary.overall_risk(post)
    assert {"prob_estimate", "prob_mean", "prob_median", "prob_lower", "prob_upper"} <= set(
        overall.columns
    )


@pytest.mark.slow
def test_pymc_probit_runs_end_to_end(tmp_path):
    """`model.sampler: pymc` with a binary outcome, from a table to univariate.csv (about
    45 s on 2 shared cores, mostly PyTensor's compile and NUTS: slow)."""
    import yaml

    from bayesmetal.cli import fit_main

    design = tiny_design(30, "bernoulli", seed=11)
    frame = pd.DataFrame(design.concentrations, columns=list(design.exposures))
    frame["age"], frame["y"] = design.X[:, 0], design.y.astype(int)
    frame.to_csv(tmp_path / "data.csv", index=False)
    config = {
        "table": {
            "path": "data.csv",
            "outcome": "y",
            "family": "bernoulli",
            "exposures": list(design.exposures),
            "covariates": ["age"],
        },
        "model": {
            "name": "bkmr",
            "engine": {"sampler": "pymc"},
            "summaries": {"draws_for_h": 20, "ngrid": 5},
        },
        "sampler": {"chains": 2, "tune": 50, "draws": 50, "seed": 3, "cores": 1},
    }
    path = tmp_path / "bkmr.yaml"
    path.write_text(yaml.safe_dump(config))
    assert fit_main([str(path), "--out", str(tmp_path / "run")]) == 0
    univariate = pd.read_csv(tmp_path / "run" / "univariate.csv")
    assert len(univariate) == 3 * 5
    assert {"estimate", "mean", "median", "prob_estimate", "prob_lower", "prob_upper"} <= set(
        univariate.columns
    )
    assert univariate["prob_estimate"].between(0, 1).all()


def test_point_estimate_is_the_median_and_notes_say_when_the_mean_cannot_stand():
    """A spike at zero with one rare excursion: the mean lies outside [lower, upper], the
    median does not; rows whose exposures are almost never in h say so."""
    draws = np.zeros((200, 2))
    draws[0] = [5.0, 0.0]  # one excursion out of 200 draws, in the first point only
    h = summary.HSamples(mean=draws, draw=draws)
    table = summary._summarise(h, 0.95, np.array([0.004, 0.5]))
    assert list(table["estimate"]) == [0.0, 0.0] and list(table["mean"]) == [0.025, 0.0]
    assert table["lower"][0] <= table["estimate"][0] <= table["upper"][0]
    assert not table["lower"][0] <= table["mean"][0] <= table["upper"][0]
    assert "PIP < 0.01 (0.004): estimate reflects rare inclusions" in table["note"][0]
    assert "mean outside the 95% interval" in table["note"][0]
    assert table["note"][1] == ""


def test_knots_draws_have_the_conditional_mean_and_covariance():
    """With knots, each draw is K_gk (m + B e): its moments are the dense conditional's
    (`_conditional`, itself checked against dense conditioning in test_kernel)."""
    design = tiny_design(30, "gaussian", seed=12)
    idata, _ = fixed_draws(design, seed=13)
    base = summary.h_posterior(idata, design, DRAWS, knots=design.z[:8])
    copies = 2000  # one posterior draw repeated: the spread is the conditional's
    post = summary.HPosterior(
        **{
            **{k: getattr(base, k) for k in ("y", "X", "z", "exposures", "knots")},
            "beta": np.repeat(base.beta[:1], copies, 0),
            "sigma_sq": np.repeat(base.sigma_sq[:1], copies),
            "lam": np.repeat(base.lam[:1], copies),
            "r": np.repeat(base.r[:1], copies, 0),
        }
    )
    post.coefficients.update(dict.fromkeys(range(copies), summary._coefficients(post, 0)))
    z_new = design.z[10:13] + 0.1
    samples = summary.sample_h_new(post, z_new, seed=1)
    mean, cov = summary._conditional(post, z_new, 0, None)
    assert np.allclose(samples.mean, mean) and np.allclose(samples.var, np.diag(cov))
    scale = np.sqrt(np.diag(cov))
    assert np.allclose(samples.draw.mean(0), mean, atol=5 * scale / np.sqrt(copies))
    assert np.allclose(
        np.cov(samples.draw.T) / np.outer(scale, scale), cov / np.outer(scale, scale), atol=0.1
    )


def test_bkmr_figures_name_the_units_of_concentrations_and_outcome(tmp_path):
    """Every BKMR figure whose axis shows a concentration or the outcome names its unit (the
    design's `units`, 'ug' as 'µg'); an exposure without a known unit says so."""
    import matplotlib.pyplot as plt
    import yaml

    from bayesmetal import diagnostics, plots, workflow
    from bayesmetal.config import load_config

    from .toydata import bkmr_table_config

    path = bkmr_table_config(tmp_path, cores=1)
    config = yaml.safe_load(path.read_text())
    config["table"]["units"] = {"a": "ug/dL", "b": "ug/L", "y": "g/cm^2"}
    path.write_text(yaml.safe_dump(config))
    plan = workflow.plan(load_config(path))
    results = workflow.summarise(plan, workflow.sample_fits(plan))
    figures = results.figures
    curves = [ax for ax in figures["univariate"].axes if ax.get_visible()]
    labels = {ax.get_title().split(" ")[0]: ax.get_xlabel() for ax in curves}
    assert labels["a"].startswith("a (µg/dL)") and labels["b"].startswith("b (µg/L)")
    assert plots.UNKNOWN_UNIT in labels["c"]
    assert curves[0].get_ylabel().startswith("change in y (g/cm²)")
    levels = [ax for ax in figures["bivariate_levels"].axes if ax.get_visible()]
    assert all("(µg/" in ax.get_xlabel() or plots.UNKNOWN_UNIT in ax.get_xlabel() for ax in levels)
    assert levels[0].get_ylabel().startswith("change in y (g/cm²)")
    assert figures["overall_risk"].axes[0].get_ylabel().startswith("change in y (g/cm²)")
    assert figures["single_var_risk"].axes[0].get_xlabel().startswith("change in y (g/cm²)")
    plt.close("all")
    # the Gibbs engine can continue the run: the verdict may offer --extend
    assert set(results.diagnostics["sampler"]) == {"bkmr-gibbs"}
    assert diagnostics.extendable(results.diagnostics)
