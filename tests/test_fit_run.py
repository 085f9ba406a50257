"""scripts/fit.py end to end: run folders, overrides, reproducibility, atomicity."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from bayesmetal import runs
from bayesmetal.arviz_api import load_idata
from bayesmetal.cli import fit_main
from bayesmetal.config import load_config
from bayesmetal.errors import ConfigError, DataError
from bayesmetal.workflow import plan

from .conftest import CONFIGS, ROOT
from .toydata import glm_frame

SHIPPED = sorted(p.name for p in CONFIGS.glob("*.yaml"))


@pytest.fixture()
def table_config(tmp_path):
    """A user's own CSV cohort and a fast multi-metal GLM config for it."""
    frame, _ = glm_frame(300, "gaussian", seed=4)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    config = {
        "table": {
            "path": "cohort.csv",
            "outcome": "y",
            "family": "gaussian",
            "exposures": ["e1", "e2"],
            "covariates": ["age", "sex"],
        },
        "model": {"name": "glm", "kind": "multi"},
        "sampler": {"chains": 2, "tune": 300, "draws": 300, "seed": 5, "progressbar": False},
        "output": {"root": "runs"},
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_folder_is_complete(table_config, tmp_path):
    out = tmp_path / "run"
    code = fit_main([str(table_config), "--out", str(out), "--set", "sampler.draws=250"])
    assert code == 0
    for name in (
        "idata.nc",
        "config.resolved.yaml",
        "diagnostics.csv",
        "effects.csv",
        "flow.csv",
        "forest.png",
        "rank_multi.png",
        "report.html",
    ):
        assert (out / name).stat().st_size > 0, name
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["sampler"]["draws"] == 250
    assert resolved["provenance"]["overrides"] == ["sampler.draws=250"]
    assert resolved["priors_resolved"]["beta"] == {"distribution": "Normal", "mu": 0, "sigma": 2.5}
    idata = load_idata(str(out / "idata.nc"))
    assert idata.posterior.sizes["draw"] == 250
    assert json.loads(idata.attrs["bayesmetal_provenance"])["data_files_sha256"]
    page = (out / "report.html").read_text()
    assert page.count("<img") >= 2 and "e1" in page and "Convergence" in page
    assert fit_main([str(table_config), "--out", str(out)]) == 2  # never overwrites silently


def test_same_seed_gives_identical_draws(table_config):
    from bayesmetal.workflow import fit

    config = load_config(table_config)
    first = fit(plan(config)).idatas["multi"].posterior["beta"].to_numpy()
    second = fit(plan(config)).idatas["multi"].posterior["beta"].to_numpy()
    assert np.array_equal(first, second)
    other = load_config(table_config, ["sampler.seed=6"])
    third = fit(plan(other)).idatas["multi"].posterior["beta"].to_numpy()
    assert not np.array_equal(first, third)


def test_failure_while_writing_leaves_nothing(table_config, tmp_path, monkeypatch):
    out = tmp_path / "run"

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "save_figure", boom)
    with pytest.raises(KeyboardInterrupt):
        fit_main([str(table_config), "--out", str(out)])
    assert not out.exists()
    assert not list(tmp_path.glob(".run.partial-*"))


def test_killed_process_leaves_no_run_folder(table_config, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "fit.py"),
            str(table_config),
            "--out",
            str(out),
            "--set",
            "sampler.draws=200000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(8)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()


def test_dry_run_writes_nothing(table_config, tmp_path, capsys):
    assert fit_main([str(table_config), "--dry-run", "--out", str(tmp_path / "x")]) == 0
    printed = capsys.readouterr().out
    assert "prior predictive" in printed and "beta ~ Normal(0, 2.5)" in printed
    assert not (tmp_path / "x").exists()


def test_table_source_errors_name_the_column(tmp_path, table_config):
    config = load_config(table_config, ["table.exposures=[e1, nope]"])
    with pytest.raises(DataError, match="nope"):
        plan(config)


def test_run_config_errors(tmp_path):
    base = f"include: {CONFIGS / 'bwqs_lumbar.yaml'}\n"
    cases = {
        "model:\n  name: bwqs\n  quantile: 4\n": "did you mean 'quantiles'",
        "sampler:\n  draws: many\n": "sampler.draws",
        "model:\n  name: forest\n": "'glm', 'bwqs'",
        "analysis:\n  outcome: hip_bmd\n": "hip_bmd",
        "model:\n  name: bwqs\n  two_index: true\n  direction: negative\n": "two_index",
    }
    for text, message in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(base + text)
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    with pytest.raises(ConfigError, match="--set"):
        load_config(CONFIGS / "bwqs_lumbar.yaml", ["sampler.draws"])


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_build(name):
    config = load_config(CONFIGS / name)
    planned = plan(config)
    assert planned.fits and planned.design.n > 1000
    for fit in planned.fits:
        if fit.runner is not None:  # BKMR's Gibbs path: its own sampler on the same priors
            assert fit.var_names and set(planned.priors) >= {"lambda", "r"}
        else:
            assert "y" in fit.model.named_vars


def test_sensitivity_pair_differs_only_in_priors():
    main = load_config(CONFIGS / "bwqs_lumbar.yaml").model_dump()
    sens = load_config(CONFIGS / "bwqs_lumbar_sensitivity.yaml").model_dump()
    differing = {k for k in main if main[k] != sens[k]} - {"source"}
    assert differing == {"priors"}


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_fit(name, tmp_path):
    """Every shipped config runs end to end; BKMR ones on short chains (their full runs take
    minutes to an hour, measured by scripts/bench.py instead)."""
    short = (
        [
            "sampler.chains=2",
            "sampler.tune=150",
            "sampler.draws=150",
            "model.draws_for_h=40",
            "model.ngrid=10",
        ]
        if name.startswith("bkmr")
        else []
    )
    args = [
        str(CONFIGS / name),
        "--out",
        str(tmp_path / "run"),
        "--set",
        "sampler.progressbar=false",
    ]
    for item in short:
        args += ["--set", item]
    assert fit_main(args) == 0
    page = (tmp_path / "run" / "report.html").read_text()
    assert page.count("<img") >= 2
