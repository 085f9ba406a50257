"""BKMR: kernel algebra, recovery of a known h, agreement with the exact PyMC model,
summaries' shapes and logic, prior overrides."""

import json

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats

from bayesmetal import priors as prior_lib
from bayesmetal.bkmr.kernel import exact_factor, gaussian_loglik, kernel, knots_factor
from bayesmetal.design import make_design
from bayesmetal.errors import ConfigError
from bayesmetal.models import bkmr
from bayesmetal.models.bkmr import BkmrSpec
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.summaries import bkmr as summary
from bayesmetal.workflow import fit_design


def simulate(n: int, seed: int, m: int = 5):
    """h = 0.5 z1 + sin(z2) (z standardised logs); z3..z5 null; one covariate."""
    rng = np.random.default_rng(seed)
    logs = rng.standard_normal((n, m))
    frame = pd.DataFrame(np.exp(logs), columns=[f"x{j + 1}" for j in range(m)])
    frame["age"] = rng.uniform(0, 1, n)
    design0 = make_design(  # a placeholder outcome: only z is read from it
        frame.assign(y=np.arange(n, dtype=float)),
        "y",
        "gaussian",
        list(frame.columns[:m]),
        ["age"],
        id_column="none",
    )
    z = design0.z
    h = 0.5 * z[:, 0] + np.sin(z[:, 1])
    frame["y"] = h + 0.3 * frame["age"] + rng.normal(0, 0.4, n)
    design = make_design(frame, "y", "gaussian", list(frame.columns[:m]), ["age"], id_column="none")
    offset = 0.3 * frame["age"].mean()  # centred covariates: their mean effect sits in h
    return design, (lambda zz: 0.5 * zz[:, 0] + np.sin(zz[:, 1]) + offset)


def test_collapsed_likelihood_and_woodbury_match_dense_algebra():
    rng = np.random.default_rng(0)
    z, r = rng.standard_normal((40, 3)), np.array([0.5, 0.0, 0.2])
    resid = rng.standard_normal(40)
    v = 2.0 * kernel(z, z, r) + np.eye(40)
    expected = stats.multivariate_normal(np.zeros(40), 0.3 * v).logpdf(resid)
    assert gaussian_loglik(resid, exact_factor(z, r, 2.0), 0.3) == pytest.approx(expected)
    # with every point a knot the predictive process is the exact kernel
    low_rank = knots_factor(z, z, r, 2.0)
    assert gaussian_loglik(resid, low_rank, 0.3) == pytest.approx(expected, rel=1e-3)
    assert np.allclose(low_rank.solve(resid), np.linalg.solve(v, resid), atol=1e-3)


SAMPLER = SamplerSpec(chains=2, tune=400, draws=400, seed=5)


def defaults(design) -> dict:
    """BKMR's default priors for the design's outcome family."""
    return bkmr.default_priors(BkmrSpec(name="bkmr"), design.family)


def gibbs(design, spec: BkmrSpec, priors=None):
    """The Gibbs engine's posterior of a BKMR spec on a ready design."""
    return fit_design(design, spec, SAMPLER, priors)[1]["bkmr"]


@pytest.fixture(scope="module")
def recovery_fit():
    design, truth = simulate(250, seed=1)
    spec = BkmrSpec(name="bkmr")
    idata = gibbs(design, spec)
    return design, truth, idata


def test_active_exposures_get_high_pips_and_null_ones_low(recovery_fit):
    _, _, idata = recovery_fit
    pips = summary.pips(idata).set_index("variable")["pip"]
    assert pips["x1"] >= 0.9 and pips["x2"] >= 0.9
    assert (pips[["x3", "x4", "x5"]] <= 0.3).all()
    # indicators that never flipped carry their Rao-Blackwellised PIP, which agrees
    conditional = json.loads(idata.attrs["bkmr_conditional_pip"])
    for name, value in conditional.items():
        assert abs(value - pips[name]) < 0.01, (name, value, pips[name])


def test_true_h_inside_the_bands(recovery_fit):
    design, truth, idata = recovery_fit
    post = summary.h_posterior(idata, design, 100)
    uni = summary.pred_resp_univar(post, ngrid=15)
    base = np.quantile(design.z, 0.5, axis=0)
    inside = []
    for j, name in enumerate(design.exposures):
        part = uni[uni["variable"] == name]
        points = np.tile(base, (len(part), 1))
        points[:, j] = part["z"]
        h = truth(points)
        inside += list((part["lower"] <= h) & (h <= part["upper"]))
    assert np.mean(inside) >= 0.9


def test_risk_summaries_logic(recovery_fit):
    design, _, idata = recovery_fit
    post = summary.h_posterior(idata, design, 60)
    overall = summary.overall_risk(post)
    assert overall.set_index("quantile").loc[0.5, "estimate"] == pytest.approx(0, abs=1e-4)
    assert overall["mean"].is_monotonic_increasing  # h rises with x1 and over x2's bulk
    risk = summary.single_var_risk(post)
    assert len(risk) == 5 * 3 and set(risk["q_fixed"]) == {0.25, 0.5, 0.75}
    x1 = risk[risk["variable"] == "x1"]
    iqr = np.diff(np.quantile(design.z[:, 0], [0.25, 0.75]))[0]
    assert (abs(x1["estimate"] - 0.5 * iqr) < 0.15).all()  # true IQR effect of x1: 0.5 x IQR
    null = risk[risk["variable"] == "x5"]
    assert (null["lower"] <= 0).all() and (null["upper"] >= 0).all()
    interaction = summary.single_var_interaction(post)
    assert list(interaction["variable"]) == list(design.exposures)
    assert ((interaction["lower"] <= 0) & (interaction["upper"] >= 0)).all()  # additive truth
    levels = summary.pred_resp_bivar_levels(post, [("x1", "x2")], ngrid=6)
    assert len(levels) == 6 * 3 and set(levels["quantile2"]) == {0.25, 0.5, 0.75}
    bivar = summary.pred_resp_bivar(post, [("x1", "x2")], ngrid=4)
    assert len(bivar) == 16


def test_knots_path_recovers_the_same_selection():
    design, _ = simulate(400, seed=2)
    spec = BkmrSpec(name="bkmr", knots=40)
    idata = gibbs(design, spec)
    pips = summary.pips(idata).set_index("variable")["pip"]
    assert pips["x1"] >= 0.9 and pips["x2"] >= 0.9 and (pips[["x3", "x4", "x5"]] <= 0.3).all()
    post = summary.h_posterior(idata, design, 40, knots=bkmr.knots_for(design, spec, 5))
    assert summary.overall_risk(post)["mean"].is_monotonic_increasing


GROUPS = {"A": ["x1", "x3"], "B": ["x2", "x4"], "C": ["x5"]}


def test_hierarchical_selection_finds_groups_and_members():
    design, truth = simulate(300, seed=9)
    spec = BkmrSpec(name="bkmr", selection="hierarchical", groups=GROUPS)
    idata = gibbs(design, spec)
    delta = idata.posterior["delta"].to_numpy().reshape(-1, 5)
    assert (delta[:, [0, 2]].sum(1) <= 1).all() and (delta[:, [1, 3]].sum(1) <= 1).all()
    table = summary.pips(idata, GROUPS).set_index("variable")
    assert table.loc["x1", "group_pip"] >= 0.9 and table.loc["x2", "group_pip"] >= 0.9
    # x5 is null and alone in C: its Bayes factor is at most about 1 (a small r barely changes
    # the fit), so its group PIP stays near the prior odds given A and B in (E[pi] = 0.6)
    assert table.loc["x5", "group_pip"] <= 0.6
    assert table.loc["x1", "cond_pip"] >= 0.8 and table.loc["x2", "cond_pip"] >= 0.8
    post = summary.h_posterior(idata, design, 40)
    risk = summary.group_risk(post, GROUPS).set_index("group")
    assert risk.loc["A", "lower"] > 0 and risk.loc["B", "lower"] > 0
    assert risk.loc["C", "lower"] <= 0 <= risk.loc["C", "upper"]


def test_groups_must_partition_the_exposures():
    design, _ = simulate(30, seed=3)
    bad = BkmrSpec(name="bkmr", selection="hierarchical", groups={"A": ["x1", "x9"]})
    with pytest.raises(ConfigError, match="model.groups.A: 'x9'"):
        bkmr.group_index(design, bad)
    partial = BkmrSpec(name="bkmr", selection="hierarchical", groups={"A": ["x1", "x2"]})
    with pytest.raises(ConfigError, match="in no group"):
        bkmr.group_index(design, partial)
    model = bkmr.build_bkmr(
        design,
        BkmrSpec(name="bkmr", selection="hierarchical", groups=GROUPS, engine={"sampler": "pymc"}),
        defaults(design),
    )
    draws = pm.draw(model["delta"], draws=300, random_seed=1)
    assert (draws[:, [0, 2]].sum(1) <= 1).all() and set(np.unique(draws)) <= {0, 1}


def test_prior_override_changes_the_model_and_bad_priors_fail():
    design, _ = simulate(30, seed=3, m=3)
    spec = BkmrSpec(name="bkmr", engine={"sampler": "pymc"})
    gamma_r = prior_lib.resolve(
        defaults(design),
        {"r": {"distribution": "Gamma", "mu": 5, "sigma": 5}},
        "bkmr",
    )
    rho = pm.draw(bkmr.build_bkmr(design, spec, gamma_r)["rho"], draws=3000, random_seed=1)
    assert rho.mean() == pytest.approx(5, rel=0.1)
    default_rho = pm.draw(
        bkmr.build_bkmr(design, spec, defaults(design))["rho"],
        draws=3000,
        random_seed=1,
    )
    assert default_rho.min() >= 0.01 and np.median(default_rho) == pytest.approx(0.02, rel=0.1)
    bad = prior_lib.resolve(
        defaults(design),
        {"sigma_sq": {"distribution": "HalfNormal", "sigma": 1}},
        "bkmr",
    )
    with pytest.raises(ConfigError, match="priors.sigma_sq"):
        gibbs(design, BkmrSpec(name="bkmr"), bad)


@pytest.mark.slow  # a recovery test: 35-50 s of MCMC
def test_probit_recovers_active_exposures_on_binary_data():
    """R's probit BKMR fails here or gives null exposures PIPs of 0.78-0.99."""
    design, truth = simulate(600, seed=6)  # at n=300 this data set gives x5 a PIP of 0.4
    latent = 1.6 * (truth(design.z) - truth(design.z).mean())
    rng = np.random.default_rng(6)
    y = (latent + rng.standard_normal(design.n) > 0).astype(float)
    binary = type(design)(**{**design.__dict__, "y": y, "family": "bernoulli"})
    priors = defaults(binary)
    assert "sigma_sq" not in priors  # the latent variance is fixed at 1
    idata = gibbs(binary, BkmrSpec(name="bkmr"), priors)
    pips = summary.pips(idata).set_index("variable")["pip"]
    assert pips["x1"] >= 0.9 and pips["x2"] >= 0.9
    assert (pips[["x3", "x4", "x5"]] <= 0.3).all()
    post = summary.h_posterior(idata, binary, 40)
    assert post.probit and post.y.shape == (40, binary.n)
    overall = summary.overall_risk(post)
    assert {"prob_estimate", "prob_mean", "prob_lower", "prob_upper"} <= set(overall.columns)
    assert overall["prob_mean"].is_monotonic_increasing


def test_probit_reference_model_declares_latent_h():
    design, _ = simulate(20, seed=3, m=3)
    binary = type(design)(
        **{**design.__dict__, "y": (design.y > design.y.mean()) * 1.0, "family": "bernoulli"}
    )
    model = bkmr.build_bkmr(
        binary,
        BkmrSpec(name="bkmr", engine={"sampler": "pymc"}),
        defaults(binary),
    )
    assert {"h", "delta", "rho", "lambda"} <= set(model.named_vars)
    assert "sigma_sq" not in model.named_vars


@pytest.mark.slow  # seconds of MCMC: the slow step
def test_saved_run_can_be_extended(tmp_path):
    """fit.py --extend continues the saved chains (R's bkmr cannot)."""
    import yaml

    from bayesmetal.arviz_api import load_idata
    from bayesmetal.cli import fit_main

    design, _ = simulate(120, seed=11, m=3)
    frame = pd.DataFrame(design.concentrations, columns=list(design.exposures))
    frame["age"], frame["y"] = design.X[:, 0], design.y
    frame.to_csv(tmp_path / "data.csv", index=False)
    config = {
        "table": {
            "path": "data.csv",
            "outcome": "y",
            "family": "gaussian",
            "exposures": list(design.exposures),
            "covariates": ["age"],
        },
        "model": {"name": "bkmr", "summaries": {"draws_for_h": 20, "ngrid": 5}},
        "sampler": {"chains": 2, "tune": 100, "draws": 60, "seed": 3},
    }
    path = tmp_path / "bkmr.yaml"
    path.write_text(yaml.safe_dump(config))
    assert fit_main([str(path), "--out", str(tmp_path / "first")]) == 0
    assert (
        fit_main(
            [
                str(path),
                "--extend",
                str(tmp_path / "first"),
                "--set",
                "sampler.draws=40",
                "--out",
                str(tmp_path / "more"),
            ]
        )
        == 0
    )
    first = load_idata(str(tmp_path / "first" / "idata.nc"))
    more = load_idata(str(tmp_path / "more" / "idata.nc"))
    assert more.posterior.sizes["draw"] == 100
    assert np.array_equal(more.posterior["r"][:, :60].to_numpy(), first.posterior["r"].to_numpy())
    assert all(entry["step"] == 2 for entry in json.loads(more.attrs["bkmr_resume"]))
    assert (
        fit_main([str(path), "--extend", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
        == 2
    )


def test_random_intercept_with_knots():
    """Knots and a random intercept together (not possible in R's bkmr): the intercept
    variance is recovered and selection is unaffected."""
    design, _ = simulate(400, seed=12)
    rng = np.random.default_rng(12)
    cluster = rng.integers(0, 10, design.n)
    effects = rng.normal(0, 0.8, 10)
    y = design.y + effects[cluster]
    clustered = type(design)(
        **{
            **design.__dict__,
            "y": y,
            "group": cluster,
            "group_levels": tuple(str(g) for g in range(10)),
            "group_name": "site",
        }
    )
    spec = BkmrSpec(name="bkmr", knots=40, random_intercept="site")
    priors = bkmr.default_priors(spec, clustered.family)
    assert "lambda_ri" in priors
    idata = gibbs(clustered, spec, priors)
    pips = summary.pips(idata).set_index("variable")["pip"]
    assert pips["x1"] >= 0.9 and pips["x2"] >= 0.9 and (pips[["x3", "x4", "x5"]] <= 0.3).all()
    ri_var = (idata.posterior["lambda_ri"] * idata.posterior["sigma_sq"]).to_numpy().ravel()
    low, high = np.quantile(ri_var, [0.025, 0.975])
    assert low < np.var(effects, ddof=1) < high
    post = summary.h_posterior(
        idata, clustered, 30, knots=bkmr.knots_for(clustered, spec, SAMPLER.seed)
    )
    assert post.onehot.shape == (400, 10)
    assert summary.overall_risk(post)["mean"].is_monotonic_increasing


def test_curves_report_concentrations_in_file_units():
    design, _ = simulate(50, seed=13, m=3)
    table = pd.DataFrame({"variable": ["x2"] * 4, "z": design.z[:4, 1]})
    mapped = summary.with_concentration(table, design)
    assert np.allclose(mapped["concentration"], design.concentrations[:4, 1])


def test_never_flipped_pips_pass_only_when_decisive_and_stuck_chains_are_flagged():
    import json

    from bayesmetal.arviz_api import from_chains
    from bayesmetal.diagnostics import check
    from bayesmetal.run_schema import DiagnosticTargets

    rng = np.random.default_rng(0)
    delta = np.zeros((2, 200, 3), dtype=np.int8)
    delta[1, :, 1] = 1  # exposure b: chain 0 always out, chain 1 always in
    r = rng.gamma(2, 1, (2, 200, 3)) * delta
    idata = from_chains(
        {"delta": delta, "r": r, "sigma_sq": rng.gamma(5, 1, (2, 200))},
        {"exposure": ["a", "b", "c"]},
        {"delta": ["exposure"], "r": ["exposure"]},
    )
    # a: never in, and its conditional inclusion probability agrees; c: never in, but the
    # conditional probability says 0.3 (a stuck move)
    idata.attrs["bkmr_conditional_pip"] = json.dumps({"a": 1e-6, "b": 0.5, "c": 0.3})
    table = check(idata, ["delta", "r", "sigma_sq"], DiagnosticTargets(min_ess=10), "t")
    table = table.set_index("parameter")
    assert table.loc["delta[a]", "ok"] and "decisive" in table.loc["delta[a]", "note"]
    assert not table.loc["delta[b]", "ok"] and not table.loc["r[b]", "ok"]
    assert not table.loc["delta[c]", "ok"] and "stuck" in table.loc["delta[c]", "problems"]
    del idata.attrs["bkmr_conditional_pip"]
    unchecked = check(idata, ["delta"], DiagnosticTargets(min_ess=10), "t").set_index("parameter")
    assert not unchecked.loc["delta[a]", "ok"]  # never flipped and nothing shows it decisive


def test_verdict_says_how_many_draws_reach_the_ess_target():
    from bayesmetal.diagnostics import verdict

    table = pd.DataFrame(
        {
            "fit": ["bkmr", "bkmr"],
            "parameter": ["r[a]", "lambda"],
            "rhat": [1.0, 1.0],
            "ess_bulk": [200.0, 900.0],
            "ess_tail": [250.0, 900.0],
            "divergences": [0, 0],
            "problems": ["ESS 200 < 400", ""],
            "ok": [False, True],
        }
    )
    line = verdict(table, draws=1000, min_ess=400)
    assert line.startswith("NOT CONVERGED") and "raise sampler.draws to about 2400" in line
    assert "--set sampler.draws=1400" in line
    assert verdict(table[table["ok"]], draws=1000).startswith("converged")
