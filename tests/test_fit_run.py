"""scripts/fit.py end to end: run folders, overrides, reproducibility, atomicity."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from bayesmetal import runs, workflow
from bayesmetal.arviz_api import load_idata
from bayesmetal.cli import fit_main
from bayesmetal.config import load_config
from bayesmetal.errors import ConfigError, DataError
from bayesmetal.summaries import glm as glm_summary
from bayesmetal.workflow import plan

from .conftest import CONFIGS, ROOT
from .toydata import base_config, bkmr_table_config, glm_frame

SHIPPED = sorted(p.name for p in CONFIGS.glob("*.yaml"))


@pytest.fixture()
def table_config(tmp_path):
    """A user's own CSV cohort and a fast multi-metal GLM config for it."""
    frame, _ = glm_frame(300, "gaussian", seed=4)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    config = base_config()
    config["sampler"] |= {"tune": 300, "draws": 300}
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


POSTERIOR = ("config.resolved.yaml", "flow.csv", "idata.nc")


def names(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name != runs.RUN_MARKER)


def test_interrupt_leaves_nothing_until_the_posterior_is_saved(table_config, tmp_path, monkeypatch):
    """Interrupted while the posterior is written: no folder. Interrupted in the summaries:
    the posterior is kept (folder completed, summaries_failed.txt). Both exit 130."""
    short = ["--set", "sampler.draws=100", "--set", "sampler.tune=100"]

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "write_posterior", boom)
    assert fit_main([str(table_config), "--out", str(tmp_path / "run"), *short]) == 130
    assert not (tmp_path / "run").exists()
    monkeypatch.undo()
    monkeypatch.setattr(runs, "save_figure", boom)
    assert fit_main([str(table_config), "--out", str(tmp_path / "kept"), *short]) == 130
    assert set(names(tmp_path / "kept")) == set(POSTERIOR) | {"summaries_failed.txt"}
    assert "KeyboardInterrupt" in (tmp_path / "kept" / "summaries_failed.txt").read_text()
    assert not list(tmp_path.glob(".run.partial-*")) + list(tmp_path.glob(".kept.partial-*"))


def test_failed_summary_keeps_the_posterior_and_summarise_recovers(
    table_config, tmp_path, monkeypatch, capsys
):
    """A summary that raises: exit code 3, the posterior, config and traceback are kept; then
    --summarise rebuilds every summary from the run folder alone (the CSV moved away)."""
    out = tmp_path / "run"

    def broken(*args, **kwargs):
        raise ValueError("summary broke")

    monkeypatch.setattr(glm_summary, "effects", broken)
    args = [str(table_config), "--out", str(out), "--set", "sampler.draws=100"]
    assert fit_main([*args, "--set", "sampler.tune=100"]) == 3
    [line] = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert "summary broke" in line and f"python scripts/fit.py --summarise {out}" in line
    assert names(out) == [*POSTERIOR, "summaries_failed.txt"]
    assert "ValueError: summary broke" in (out / "summaries_failed.txt").read_text()
    monkeypatch.undo()
    posterior = (out / "idata.nc").read_bytes()
    (tmp_path / "cohort.csv").rename(tmp_path / "moved.csv")
    assert fit_main(["--summarise", str(out)]) == 0
    assert (out / "idata.nc").read_bytes() == posterior
    assert "summaries_failed.txt" not in names(out)
    for name in ("diagnostics.csv", "effects.csv", "forest.png", "rank_multi.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert "e1" in pd.read_csv(out / "effects.csv")["term"].tolist()
    assert not list(tmp_path.glob(".run.*"))
    assert fit_main(["--summarise", str(tmp_path / "nowhere")]) == 2
    with pytest.raises(SystemExit):
        fit_main([str(table_config), "--summarise", str(out)])


BKMR_SHORT = ["sampler.chains=1", "sampler.tune=10", "sampler.draws=5", "sampler.progressbar=false"]


@pytest.mark.slow  # seconds of MCMC: the slow step
def test_extend_refuses_another_outcome_prior_and_seed(tmp_path, capsys, monkeypatch):
    """--set analysis.outcome=total_bmd with --extend used to append total-BMD draws to
    lumbar-BMD chains: now every difference is named and nothing is sampled or written."""
    short = [item for setting in BKMR_SHORT for item in ("--set", setting)]
    first = tmp_path / "lumbar"

    def skipped(*args, **kwargs):  # --extend needs the posterior only; summaries take long
        raise RuntimeError("summaries skipped")

    monkeypatch.setattr(workflow, "summarise", skipped)
    assert fit_main([str(CONFIGS / "bkmr_lumbar.yaml"), "--out", str(first), *short]) == 3
    changed = [
        "analysis.outcome=total_bmd",
        "sampler.seed=7",
        "priors.lambda={distribution: Gamma, alpha: 2, beta: 0.1}",
        "sampler.draws=20",  # the point of --extend: allowed
    ]
    args = [str(CONFIGS / "bkmr_lumbar.yaml"), "--extend", str(first), "--out", str(tmp_path / "x")]
    capsys.readouterr()
    assert fit_main([*args, *short, *(x for c in changed for x in ("--set", c))]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --extend: the saved run differs in: analysis.outcome (lumbar_bmd -> total_bmd), "
        "sampler.seed (20240601 -> 7), priors.lambda, data (y differs), knots"
    )
    assert not (tmp_path / "x").exists()


@pytest.fixture()
def bkmr_config(tmp_path):
    return bkmr_table_config(tmp_path)


def test_bkmr_run_checked_on_extend_and_summarised_from_its_folder(bkmr_config, tmp_path, capsys):
    """Changed data refuse --extend; without the data file --summarise gives the same tables."""
    out = tmp_path / "run"
    assert fit_main([str(bkmr_config), "--out", str(out)]) == 0
    tables = ("univariate", "overall_risk", "single_var_risk", "bivariate_levels", "pips")
    before = {name: pd.read_csv(out / f"{name}.csv") for name in tables}
    data = pd.read_csv(tmp_path / "data.csv")
    data.loc[0, "b"] *= 2
    data.to_csv(tmp_path / "data.csv", index=False)
    capsys.readouterr()
    assert fit_main([str(bkmr_config), "--extend", str(out), "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --extend: the saved run differs in: data (checksum of data.csv, z differ), knots"
    )
    (tmp_path / "data.csv").unlink()
    assert fit_main(["--summarise", str(out)]) == 0
    for name, table in before.items():
        pd.testing.assert_frame_equal(pd.read_csv(out / f"{name}.csv"), table, obj=name)


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
        assert fit.diagnosed and set(fit.posterior) >= set(fit.diagnosed)
        if fit.engine == "bkmr-gibbs":  # BKMR's own engine on the same priors
            assert set(planned.priors) >= {"lambda", "r"} and fit.problem.priors is planned.priors
        else:
            model = fit.build()  # a survey run's likelihood is the weighted potential
            likelihood = "y_weighted" if planned.design.survey is not None else "y"
            assert likelihood in model.named_vars and set(fit.posterior) <= set(model.named_vars)


def test_sensitivity_pair_differs_only_in_priors():
    main = load_config(CONFIGS / "bwqs_lumbar.yaml").model_dump()
    sens = load_config(CONFIGS / "bwqs_lumbar_sensitivity.yaml").model_dump()
    differing = {k for k in main if main[k] != sens[k]} - {"source"}
    assert differing == {"priors"}


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_fit(name, tmp_path):
    """Every shipped config runs end to end, on short chains (this checks that each runs and
    writes its report; the full runs take minutes to an hour, measured by scripts/bench.py)."""
    short = ["sampler.chains=2", "sampler.tune=300", "sampler.draws=300"]
    if name.startswith("bkmr"):
        short = [
            "sampler.chains=2",
            "sampler.tune=150",
            "sampler.draws=150",
            "model.summaries.draws_for_h=40",
            "model.summaries.ngrid=10",
            "model.summaries.draws_for_design=100",
        ]
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
