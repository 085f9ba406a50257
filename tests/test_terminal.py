"""What fit.py prints: a one-screen end summary (verdict and headline), --verbose for the full
tables, progress bars of the Gibbs chains, and no known-harmless warnings of dependencies."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

from bayesmetal import diagnostics
from bayesmetal.arviz_api import convergence_table, from_chains
from bayesmetal.bkmr.priors import DEFAULT_PRIORS
from bayesmetal.bkmr.sampler import BkmrData, report_every, sample_chains
from bayesmetal.cli import fit_main
from bayesmetal.design import make_design
from bayesmetal.progress import ChainBars
from bayesmetal.quiet import quiet_dependencies
from bayesmetal.terminal import compact, design_notes, uses_quantiles

from .conftest import ROOT
from .fakesampler import use_fake_sampler
from .toydata import base_config, bkmr_table_config, glm_frame

SCREEN = 25  # lines: the whole output of a small GLM run, flow line to the last line


@pytest.fixture()
def glm_run(tmp_path, monkeypatch):
    """A user's CSV and a multi-metal GLM config, sampled by prior draws (fake sampler)."""
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    frame, _ = glm_frame(200, "gaussian", seed=4)
    frame.to_csv("cohort.csv", index=False)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(base_config()))
    return ["c.yaml", "--out", "run"]


def test_end_summary_fits_on_a_screen_with_verdict_and_headline(glm_run, capsys):
    assert fit_main(glm_run) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) <= SCREEN, out
    assert lines[0].startswith("n = 200 at start -> 200 analysed")
    assert "CONVERGED" in out  # prior draws as a posterior: not converged, and says which
    assert "effects (fit: multi, measure: beta, estimate: posterior median):" in out
    header = next(line for line in lines if line.strip().startswith("term"))
    assert header.split() == ["term", "estimate", "95%", "interval"]
    assert any(line.split()[0] == "e1" and "[" in line for line in lines[1:] if line.strip())
    assert "prob_direction" not in out and "n_before" not in out  # full tables: files only
    assert "wrote run/" in out


def test_verbose_prints_every_table_in_full(glm_run, capsys):
    assert fit_main([*glm_run, "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "n_before" in out  # the flow table
    assert "effects:" in out and "prob_direction" in out and "p_two_sided" in out


def test_compact_keeps_keys_point_and_interval_and_rounds():
    table = pd.DataFrame(
        {
            "fit": ["multi", "multi"],
            "term": ["Pb", "Cd"],
            "measure": ["odds ratio", "odds ratio"],
            "estimate": [1.234567, 0.0123],
            "sd": [0.1, 0.2],
            "lower": [1.0012, -0.5],
            "upper": [1.5, 0.61],
            "ci_prob": [0.9, 0.9],
        }
    )
    note, shown = compact(table)
    assert note == "fit: multi, measure: odds ratio"
    assert list(shown.columns) == ["term", "estimate", "90% interval"]
    assert shown.to_numpy().tolist() == [
        ["Pb", "1.23", "[1.00, 1.50]"],
        ["Cd", "0.01", "[-0.50, 0.61]"],
    ]
    tiny = table.assign(lower=[-1e-9, -0.5])  # a lower bound that rounds to zero: no "-0.00"
    assert compact(tiny)[1]["90% interval"].tolist() == ["[0.00, 1.50]", "[-0.50, 0.61]"]
    pips = pd.DataFrame({"variable": ["a", "b"], "pip": [0.000375, 0.0121]})
    assert compact(pips)[1]["pip"].tolist() == ["0.0004", "0.0121"]
    assert compact(pd.DataFrame({"variable": ["a"], "z": [1.0]})) is None  # no point estimate


def small_bkmr() -> BkmrData:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(60, 3))
    return BkmrData(
        y=z[:, 0] + rng.normal(0, 0.5, 60), X=rng.normal(size=(60, 1)), z=z, knots=z[:8]
    )


@pytest.mark.parametrize("cores", [1, 2])
def test_gibbs_progress_reports_every_chain_to_completion(cores):
    """Each chain is heard at its start (0), about every 1% and at its end, in order; the
    draws are those of a run without progress."""
    heard: list[tuple[int, int]] = []
    tune, draws = 150, 100
    chains, _ = sample_chains(
        small_bkmr(), DEFAULT_PRIORS, tune, draws, 3, seed=1, cores=cores,
        progress=lambda chain, done: heard.append((chain, done)),
    )  # fmt: skip
    for chain in range(3):
        done = [d for c, d in heard if c == chain]
        assert done[-1] == tune + draws and done == sorted(done)
        assert len(done) <= (tune + draws) // report_every(tune + draws) + 2
        if cores == 1:  # in process every report arrives; from workers, the polled values
            every = report_every(tune + draws)
            assert done == [0, *range(every, tune + draws, every), tune + draws]
    quiet, _ = sample_chains(small_bkmr(), DEFAULT_PRIORS, tune, draws, 3, seed=1, cores=cores)
    for a, b in zip(chains, quiet, strict=True):
        assert all(np.array_equal(a.draws[k], b.draws[k]) for k in a.draws)


def test_chain_bars_show_the_phase_of_each_chain():
    file = io.StringIO()
    bars = ChainBars(2, tune=10, draws=20, console=Console(file=file, width=100))
    with bars.bars:
        bars.update(0, 0)
        assert "chain 0  warm-up" in bars.bars.tasks[0].description
        assert "waiting" in bars.bars.tasks[1].description  # queued behind chain 0
        bars.update(0, 15)
        assert "sampling" in bars.bars.tasks[0].description
        bars.update(0, 30)
        bars.update(1, 30)
    text = file.getvalue()
    assert text.count("done") == 2 and "30/30" in text


@pytest.fixture()
def bkmr_run(tmp_path):
    return bkmr_table_config(tmp_path, cores=2)


def test_gibbs_bars_shown_and_silent_with_progressbar_false(bkmr_run, tmp_path, capsys):
    assert fit_main([str(bkmr_run), "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "BKMR Gibbs sampler: 2 chains x (30 warm-up + 20 draws)" in err
    assert "chain 0  done" in err and "chain 1  done" in err and "50/50" in err
    off = ["--set", "sampler.progressbar=false"]
    assert fit_main([str(bkmr_run), "--out", str(tmp_path / "b"), *off]) == 0
    assert "chain 0" not in capsys.readouterr().err


def test_known_warnings_are_gone_from_a_run(bkmr_run, tmp_path):
    """A fresh process (PyTensor warns once per process): the BLAS warning and ArviZ's
    RuntimeWarnings of constant parameters used to be printed here."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fit.py"), str(bkmr_run), "--out", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "BLAS" not in done.stderr, done.stderr
    assert "Warning" not in done.stdout


def test_convergence_table_skips_constant_parameters_without_warnings():
    """R-hat of a parameter that never moves is 0/0: not asked of ArviZ (which warned), and
    the table is otherwise az.summary's."""
    rng = np.random.default_rng(0)
    r = np.abs(rng.normal(size=(3, 50, 2)))
    r[:, :, 1] = 0.0  # an exposure never included
    idata = from_chains(
        {"r": r, "lam": rng.normal(size=(3, 50))}, {"exposure": ["Pb", "Cd"]}, {"r": ["exposure"]}
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = convergence_table(idata, ["r", "lam"])
    assert not caught
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = az.summary(idata, var_names=["r", "lam"], kind="diagnostics")
    expected = expected.rename(columns={"r_hat": "rhat"})[["rhat", "ess_bulk", "ess_tail"]]
    pd.testing.assert_frame_equal(table, expected.rename_axis("parameter").reset_index())
    assert table["parameter"].tolist() == ["r[Pb]", "r[Cd]", "lam"]


def test_importing_bayesmetal_changes_no_warning_filter():
    """The library leaves filters alone (only the CLI silences, inside a block)."""
    code = (
        "import warnings, pymc, arviz, pytensor, matplotlib\n"
        "before = list(warnings.filters)\n"
        "import bayesmetal, bayesmetal.cli, bayesmetal.workflow, bayesmetal.quiet\n"
        "assert warnings.filters == before, set(warnings.filters) ^ set(before)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_quiet_block_restores_filters_and_levels():
    import logging

    before, level = list(warnings.filters), logging.getLogger("pymc").level
    with quiet_dependencies():
        assert warnings.filters != before
        assert logging.getLogger("pymc").level >= logging.WARNING
    assert warnings.filters == before and logging.getLogger("pymc").level == level


def short_of_ess(sampler: str | None) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "fit": ["f", "f"],
            "parameter": ["beta[e1]", "intercept"],
            "rhat": [1.0, 1.0],
            "ess_bulk": [200.0, 900.0],
            "ess_tail": [250.0, 900.0],
            "divergences": [0, 0],
            "problems": ["ESS 200 < 400", ""],
            "ok": [False, True],
        }
    )
    return table if sampler is None else table.assign(sampler=sampler)


@pytest.mark.parametrize("sampler", ["pymc", "nutpie", "fake (prior draws)"])
def test_verdict_suggests_more_draws_not_extend_where_the_engine_cannot_continue(sampler):
    line = diagnostics.verdict(short_of_ess(sampler), draws=1000, min_ess=400)
    assert "raise sampler.draws to about 2400" in line and "fit again" in line
    assert "--extend" not in line


def test_verdict_suggests_extend_where_the_engine_can_continue():
    line = diagnostics.verdict(short_of_ess("bkmr-gibbs"), draws=1000, min_ess=400)
    assert "--extend RUN --set sampler.draws=1400" in line and "fit again" not in line


def test_diagnostics_name_the_sampler_of_each_fit(glm_run, capsys):
    """A GLM run's end summary never offers --extend (PyMC cannot continue a run)."""
    assert fit_main(glm_run) == 0
    out = capsys.readouterr().out
    assert "--extend" not in out
    table = pd.read_csv("run/diagnostics.csv")
    assert set(table["sampler"]) == {"fake (prior draws)"}


def test_quantile_notes_only_for_models_that_use_quantile_scores():
    from bayesmetal.models.bkmr import BkmrSpec
    from bayesmetal.models.bwqs import BwqsSpec
    from bayesmetal.models.glm import GlmSpec
    from bayesmetal.models.qgcomp import QgcompSpec

    frame, _ = glm_frame(60, "gaussian", seed=1)
    frame["e1"] = np.where(frame["e1"] < frame["e1"].quantile(0.6), 0.05, frame["e1"])  # LOD
    design = make_design(frame, "y", "gaussian", ["e1", "e2"], ["age"], 4, id_column="none")
    quantile_note = "e1: 2 distinct quantile groups (ties at the LOD)"
    assert quantile_note in design.notes
    for spec in (GlmSpec(name="glm"), BwqsSpec(name="bwqs"), QgcompSpec(name="qgcomp")):
        assert uses_quantiles(spec) and quantile_note in design_notes(design.notes, spec)
    bkmr = BkmrSpec(name="bkmr")
    assert not uses_quantiles(bkmr)
    other = "a note on something else"
    assert design_notes([*design.notes, other], bkmr) == [other]
