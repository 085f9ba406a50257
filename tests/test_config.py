"""Strict configuration: unknown keys, wrong types and bad values name the file and key."""

import pytest

from bayesmetal.config import load_config
from bayesmetal.errors import ConfigError

from .conftest import CONFIGS


def _write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = f"include: {CONFIGS / 'cohorts' / 'adults_op_2013.yaml'}\n"


def test_shipped_cohorts_load():
    for path in (CONFIGS / "cohorts").glob("*.yaml"):
        assert load_config(path).cohort.name == path.stem


def test_unknown_key_names_file_key_and_suggests(tmp_path):
    path = _write(tmp_path, BASE + "cohort:\n  exposure: []\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and "cohort.exposure" in message
    assert "did you mean 'exposures'" in message


def test_wrong_type_names_the_key(tmp_path):
    path = _write(tmp_path, BASE + "cohort:\n  cycles: 2013\n")
    with pytest.raises(ConfigError, match=r"cohort\.cycles"):
        load_config(path)


def test_impossible_values_are_rejected(tmp_path):
    path = _write(tmp_path, BASE + "cohort:\n  covariates:\n    pir:\n      labels: [a, b]\n")
    with pytest.raises(ConfigError, match="2 breaks need 3 labels"):
        load_config(path)
    path = _write(
        tmp_path,
        BASE + "cohort:\n  outcomes:\n    t:\n      type: tscore\n"
        "      variable: DXXNKBMD\n      reference: {mean: 0.8, sd: -1}\n",
    )
    with pytest.raises(ConfigError, match=r"cohort\.outcomes\.t\.tscore\.reference\.sd"):
        load_config(path)


def test_unknown_derivation_lists_the_valid_ones(tmp_path):
    path = _write(tmp_path, BASE + "cohort:\n  covariates:\n    x: {derive: magic, variable: A}\n")
    with pytest.raises(ConfigError, match="'numeric', 'recode', 'cut'"):
        load_config(path)


def test_missing_config_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "cohort: [unclosed\n"))


def test_include_merges_and_local_values_win(tmp_path):
    path = _write(tmp_path, BASE + "cohort:\n  name: mine\n  group_by: sex\n")
    config = load_config(path)
    assert config.cohort.name == "mine" and config.cohort.group_by == "sex"
    assert config.cohort.components[0] == "DEMO"  # from the included file


def test_data_dir_is_relative_to_the_file_that_sets_it():
    config = load_config(CONFIGS / "cohorts" / "children_bmd_2017.yaml")
    assert config.data.nhanes_dir == str((CONFIGS.parent / "data" / "nhanes").resolve())
