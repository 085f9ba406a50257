"""Config ergonomics: an included model's keys and priors do not leak into another model
(include: and --set model.name), a prior given in part starts from the model's default, and a
misspelled distribution gets a did-you-mean."""

import pytest

from bayesmetal.cli import fit_main
from bayesmetal.config import apply_overrides, load_config, load_mapping, merge_config
from bayesmetal.errors import ConfigError
from bayesmetal.priors import did_you_mean, from_mapping

from .conftest import CONFIGS

SENSITIVITY = CONFIGS / "bwqs_lumbar_sensitivity.yaml"  # bwqs + priors weights and b1


def _write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_include_of_another_model_replaces_the_model_section_and_priors(tmp_path):
    """The issue's case: include a BWQS config, switch to GLM. It failed with "key
    'direction' is not valid here"; the BWQS priors would have failed next."""
    path = _write(tmp_path, f"include: {SENSITIVITY}\nmodel: {{name: glm, kind: multi}}\n")
    config = load_config(path)
    assert config.model.name == "glm" and config.model.kind == "multi"
    assert "direction" not in load_mapping(path)["model"]
    assert config.priors == {}  # weights and b1 are BWQS priors
    assert config.analysis.outcome == "lumbar_bmd"  # everything else still included


def test_include_of_the_same_model_still_merges(tmp_path):
    path = _write(tmp_path, f"include: {SENSITIVITY}\nmodel: {{name: bwqs, quantiles: 5}}\n")
    config = load_config(path)
    assert (config.model.quantiles, config.model.direction) == (5, "free")
    assert set(config.priors) == {"weights", "b1"}
    path = _write(tmp_path, f"include: {SENSITIVITY}\nmodel: {{quantiles: 3}}\n")  # no name
    assert load_config(path).model.quantiles == 3


def test_priors_given_with_the_new_model_are_kept(tmp_path):
    text = (
        f"include: {SENSITIVITY}\nmodel: {{name: glm, kind: multi}}\n"
        "priors:\n  beta: {distribution: Normal, mu: 0, sigma: 0.5}\n"
    )
    config = load_config(_write(tmp_path, text))
    assert list(config.priors) == ["beta"] and config.priors["beta"].parameters["sigma"] == 0.5


def test_merge_rule_on_mappings():
    base = {"model": {"name": "bwqs", "direction": "free"}, "priors": {"b1": {}}, "sampler": {}}
    assert merge_config(base, {"model": {"name": "glm"}}) == {
        "sampler": {},
        "model": {"name": "glm"},
    }
    assert merge_config(base, {"model": {"name": "bwqs", "quantiles": 5}})["model"] == {
        "name": "bwqs",
        "direction": "free",
        "quantiles": 5,
    }


def test_set_model_name_starts_the_new_model_from_its_defaults():
    config = load_config(
        SENSITIVITY, ["model.kind=multi", "model.name=glm", "priors.beta.sigma=1"]
    )  # model.name applies first, whatever its place
    assert (config.model.name, config.model.kind) == ("glm", "multi")
    assert list(config.priors) == ["beta"]
    mapping = apply_overrides(load_mapping(SENSITIVITY), ["model.name=bwqs", "model.quantiles=5"])
    assert mapping["model"]["direction"] == "free"  # the same model: nothing dropped
    assert set(mapping["priors"]) == {"weights", "b1"}
    switched = apply_overrides(load_mapping(SENSITIVITY), ["model={name: qgcomp}"])
    assert switched["model"] == {"name": "qgcomp"} and "priors" not in switched


def test_set_model_name_on_the_command_line(capsys):
    args = [str(CONFIGS / "bwqs_lumbar.yaml"), "--set", "model.name=glm", "--dry-run"]
    assert fit_main([*args, "--set", "model.kind=multi"]) == 0
    assert "--- model multi" in capsys.readouterr().out


def test_a_prior_given_in_part_keeps_the_defaults_other_parameters():
    """README's `--set priors.b1.sigma=1` used to fail: 'give a mapping with distribution'."""
    config = load_config(CONFIGS / "bwqs_lumbar.yaml", ["priors.b1.sigma=1"])
    b1 = config.priors["b1"]
    assert b1.distribution == "Normal" and b1.parameters == {"mu": 0, "sigma": 1}
    with pytest.raises(ConfigError, match=r"priors: nonsense not a prior of model 'bwqs'"):
        load_config(CONFIGS / "bwqs_lumbar.yaml", ["priors.nonsense.sigma=1"])


def test_a_config_file_must_still_name_the_distribution(tmp_path):
    path = _write(
        tmp_path, f"include: {CONFIGS / 'bwqs_lumbar.yaml'}\npriors:\n  b1: {{sigma: 1}}\n"
    )
    with pytest.raises(ConfigError, match=r"priors\.b1: give a mapping with 'distribution'"):
        load_config(path)
    assert load_config(path, ["priors.b1.mu=0.5"]).priors["b1"].parameters == {
        "mu": 0.5,
        "sigma": 1,
    }


@pytest.mark.parametrize(
    ("name", "hint"),
    [("Gama", "Gamma"), ("normal", "Normal"), ("HalfNormall", "HalfNormal")]
    + [("Dirichelt", "Dirichlet"), ("StudentsT", "StudentT")],
)
def test_misspelled_distribution_gets_a_did_you_mean(name, hint):
    with pytest.raises(ConfigError) as info:
        from_mapping({"distribution": name, "sigma": 1}, "b1")
    message = str(info.value)
    assert message.startswith("priors.b1 = ") and f"(did you mean {hint!r}?)" in message


def test_no_hint_for_a_real_or_far_name():
    assert did_you_mean("Normal") == "" and did_you_mean("Xyzzy") == ""
    with pytest.raises(ConfigError) as info:
        from_mapping({"distribution": "Xyzzy"}, "b1")
    assert "did you mean" not in str(info.value)


def test_did_you_mean_in_a_config_and_a_nested_prior(tmp_path):
    path = _write(
        tmp_path,
        f"include: {CONFIGS / 'bwqs_lumbar.yaml'}\n"
        "priors:\n  b1: {distribution: Normal, mu: {distribution: Nromal, sigma: 1}, sigma: 1}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and "priors.b1.mu" in message
    assert "(did you mean 'Normal'?)" in message
    with pytest.raises(ConfigError, match=r"did you mean 'Gamma'"):
        load_config(CONFIGS / "bwqs_lumbar.yaml", ["priors.b1.distribution=Gama"])
