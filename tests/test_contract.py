"""The model contract: priors are Prior objects checked when a config loads (before any data),
the registry dispatches, engines return the fit's posterior contract or are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from pymc_extras.prior import Prior

from bayesmetal import engines, workflow
from bayesmetal import priors as prior_lib
from bayesmetal.bkmr import priors as bkmr_priors
from bayesmetal.config import load_config
from bayesmetal.errors import ConfigError
from bayesmetal.models import registry
from bayesmetal.models.contract import ContractError, check_posterior
from bayesmetal.run_schema import SamplerSpec

from .conftest import CONFIGS
from .fakesampler import use_fake_sampler
from .toydata import base_config, glm_frame

SHIPPED = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def write(tmp_path, config: dict):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_loads_with_prior_objects(name):
    config = load_config(CONFIGS / name)
    assert all(isinstance(p, Prior) for p in config.priors.values())
    assert config.model.name in registry.MODELS


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"distribution": "Normal", "mu": 0, "sgma": 1}, r"priors\.beta.*sgma"),
        ({"distribution": "Gama", "alpha": 1}, r"priors\.beta.*Gama"),
        ({"distribution": "Normal", "mu": 0, "sigma": -1}, r"priors\.beta.*outside their range"),
        (
            {"distribution": "Normal", "sigma": 1, "transform": "nonsense"},
            r"priors\.beta.*nonsense",
        ),
        ({"mu": 0, "sigma": 1}, r"priors\.beta: give a mapping with 'distribution'"),
        ({"distribution": "Normal", "sigma": 1, "dims": "x"}, r"priors\.beta\.dims"),
        ({"distribution": "HalfNormal", "sigma": 1, "centered": False}, r"non-centered"),
    ],
)
def test_a_wrong_prior_is_a_named_error_at_load_before_any_data(tmp_path, prior, message):
    """The table file does not exist: the error must come from loading the config alone."""
    path = write(tmp_path, base_config("missing.csv") | {"priors": {"beta": prior}})
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_an_unknown_prior_name_lists_the_models_names_at_load(tmp_path):
    path = write(
        tmp_path, base_config("missing.csv") | {"priors": {"betaa": {"distribution": "Normal"}}}
    )
    with pytest.raises(ConfigError, match="betaa.*valid names: beta, gamma, intercept, sigma"):
        load_config(path)


def test_a_family_the_model_does_not_take_is_refused_at_load(tmp_path):
    config = base_config("missing.csv", family="poisson")
    config["model"] = {"name": "bkmr"}
    with pytest.raises(ConfigError, match="model 'bkmr' takes gaussian, bernoulli outcomes"):
        load_config(write(tmp_path, config))


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"sigma_sq": {"distribution": "HalfNormal", "sigma": 1}}, "needs a InverseGamma prior"),
        ({"r": {"distribution": "Pareto", "alpha": 1, "m": 0.01, "transform": "exp"}}, "plain"),
        (
            {
                "lambda": {
                    "distribution": "Gamma",
                    "alpha": {"distribution": "HalfNormal"},
                    "beta": 1,
                }
            },
            "fixed prior parameters",
        ),
        ({"r": {"distribution": "HalfNormal", "sigma": 1e9}}, "outside"),
        ({"beta": {"distribution": "Normal", "mu": [0, 1], "sigma": 1}}, "one value per parameter"),
    ],
)
def test_bkmr_gibbs_refuses_at_load_what_it_cannot_honour(tmp_path, prior, message):
    config = base_config("missing.csv") | {"priors": prior}
    config["model"] = {"name": "bkmr"}
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, config))
    config["model"]["engine"] = {"sampler": "pymc"}  # PyMC's engine takes any prior
    assert load_config(write(tmp_path, config)).priors


def test_gibbs_reads_conjugate_parameters_whatever_the_parametrisation():
    """`beta: {distribution: Normal, sigma: 5}` without mu used to crash the sampler."""
    assert bkmr_priors.params({"distribution": "Normal", "sigma": 5}, "beta") == {
        "mu": 0.0,
        "sigma": 5.0,
    }
    assert bkmr_priors.params({"distribution": "Normal", "mu": 1, "tau": 4}, "beta") == {
        "mu": 1,
        "sigma": 0.5,
    }
    inverse_gamma = bkmr_priors.params(
        {"distribution": "InverseGamma", "mu": 1, "sigma": 0.5}, "sigma_sq"
    )
    assert inverse_gamma == pytest.approx({"alpha": 6.0, "beta": 5.0})  # mean b/(a-1) = 1
    beta = bkmr_priors.params({"distribution": "Beta", "mu": 0.3, "sigma": 0.1}, "pi")
    assert beta == pytest.approx({"alpha": 6.0, "beta": 14.0})


def test_priors_round_trip_through_their_yaml_form():
    mapping = {
        "b1": {
            "distribution": "Normal",
            "mu": {"distribution": "Normal", "mu": 0, "sigma": 2.5},
            "sigma": {"distribution": "HalfNormal", "sigma": 1},
            "centered": False,
        },
        "weights": {"distribution": "Dirichlet", "a": [1.0, 2.0, 0.5]},
        "beta": {"distribution": "Normal", "mu": 0, "sigma": 1, "transform": "exp"},
    }
    priors = prior_lib.from_mappings(mapping)
    assert prior_lib.as_mappings(priors) == mapping
    assert not priors["b1"].centered and priors["beta"].transform == "exp"
    loaded = yaml.safe_load(yaml.safe_dump(prior_lib.as_mappings(priors)))
    assert prior_lib.as_mappings(prior_lib.from_mappings(loaded)) == mapping


def test_the_posterior_contract_is_checked_before_summaries(monkeypatch, tmp_path):
    use_fake_sampler(monkeypatch)
    frame, _ = glm_frame(120, "gaussian", seed=2)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    planned = workflow.plan(load_config(write(tmp_path, base_config())))
    idatas = workflow.sample_fits(planned)
    (fit,) = planned.fits
    assert set(fit.posterior) == {"intercept", "beta", "gamma", "sigma"}
    assert fit.posterior["beta"] == ("term",) and fit.posterior["sigma"] == ()
    check_posterior(idatas["multi"], fit)
    del idatas["multi"].posterior["gamma"]
    with pytest.raises(ContractError, match="'multi'.*gamma is missing"):
        workflow.summarise(planned, idatas)


def test_a_count_outcome_runs_through_a_config_as_rate_ratios(monkeypatch, tmp_path):
    use_fake_sampler(monkeypatch)
    frame, _ = glm_frame(150, "gaussian", seed=3)
    frame["y"] = np.random.default_rng(3).poisson(2.0, len(frame))
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    config = load_config(write(tmp_path, base_config(family="negative_binomial")))
    planned = workflow.plan(config)
    assert set(planned.priors) == {"intercept", "beta", "gamma", "alpha"}
    results = workflow.summarise(planned, workflow.sample_fits(planned))
    assert (results.tables["effects"]["measure"] == "rate ratio").all()


def test_extend_is_refused_for_an_engine_that_cannot_resume(monkeypatch, tmp_path):
    frame, _ = glm_frame(60, "gaussian", seed=4)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    planned = workflow.plan(load_config(write(tmp_path, base_config())))
    with pytest.raises(ConfigError, match="pymc engine, which cannot continue"):
        engines.extender(planned.fits[0])


def test_fit_design_samples_a_registered_model_without_a_config():
    from bayesmetal.design import make_design
    from bayesmetal.models.glm import GlmSpec

    frame, _ = glm_frame(80, "gaussian", seed=5)
    design = make_design(frame, "y", "gaussian", ["e1", "e2"], ["age"], id_column="none")
    sampler = SamplerSpec(chains=1, tune=50, draws=50, seed=1, progressbar=False)
    fits, idatas = workflow.fit_design(design, GlmSpec(name="glm"), sampler)
    assert [f.label for f in fits] == ["multi"] and idatas["multi"].posterior.sizes["draw"] == 50


def test_a_conjugate_sigma_sq_in_any_parametrisation_loads(tmp_path):
    """Replacing R's InverseGamma(0.001, 0.001) crashed the load: the check drew from it."""
    config = base_config("missing.csv") | {
        "priors": {"sigma_sq": {"distribution": "InverseGamma", "mu": 1, "sigma": 1}}
    }
    config["model"] = {"name": "bkmr"}
    assert load_config(write(tmp_path, config)).priors["sigma_sq"].distribution == "InverseGamma"


def test_bkmr_gibbs_with_selection_and_no_covariates_runs():
    """The inclusion check reshaped a (chain, draw, 0) beta and crashed every such run."""
    from bayesmetal.bkmr.simulate import sim_bkmr
    from bayesmetal.models.bkmr import BkmrSpec

    bare, _ = sim_bkmr(60, m=5, n_covariates=0, seed=2)
    sampler = SamplerSpec(chains=2, tune=30, draws=20, seed=1, progressbar=False)
    fits, idatas = workflow.fit_design(bare, BkmrSpec(name="bkmr"), sampler)
    assert "beta" not in fits[0].posterior and "delta" in idatas["bkmr"].posterior
    check_posterior(idatas["bkmr"], fits[0])


@pytest.mark.parametrize("family", ["poisson", "negative_binomial"])
def test_prior_predictive_of_count_families_is_finite(monkeypatch, tmp_path, family):
    frame, _ = glm_frame(1000, "gaussian", seed=6)
    frame["y"] = np.random.default_rng(6).poisson(1.0, len(frame))
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    planned = workflow.plan(load_config(write(tmp_path, base_config(family=family))))
    table = workflow.prior_predictive(planned)
    assert np.isfinite(table["prior_pred_p95"]).all()


def test_bkmr_prior_predictive_is_reported_not_empty(tmp_path):
    """The Gibbs engine's fit is declared on a subset for the check; R's vague sigma_sq prior
    cannot be simulated, which the table says rather than crash."""
    from bayesmetal.bkmr.simulate import sim_bkmr

    design, _ = sim_bkmr(400, m=5, n_covariates=0, seed=3)
    frame = pd.DataFrame(design.concentrations, columns=list(design.exposures))
    frame["y"] = design.y
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    config = base_config() | {"model": {"name": "bkmr", "knots": 20}}
    config["table"] |= {"exposures": list(design.exposures), "covariates": []}
    planned = workflow.plan(load_config(write(tmp_path, config)))
    assert "not simulable" in workflow.prior_predictive(planned, draws=20)["note"].iloc[0]
    config["priors"] = {"sigma_sq": {"distribution": "InverseGamma", "alpha": 2, "beta": 1}}
    planned = workflow.plan(load_config(write(tmp_path, config)))
    table = workflow.prior_predictive(planned, draws=20)
    assert np.isfinite(table[["prior_pred_p05", "prior_pred_p95"]].to_numpy()).all()
