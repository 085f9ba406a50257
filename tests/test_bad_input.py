"""The catalogue of bad inputs and faults a new user met: each ends in a named error (exit 2),
a clean runtime failure (3) or interruption (130), or a correct result, and nothing already on
disk is changed or lost. The sampler is replaced by prior draws: these tests check plumbing."""

from __future__ import annotations

import errno
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bayesmetal import engines, runs, workflow, xpt
from bayesmetal.cli import describe_main, fit_main

from .conftest import CONFIGS, EMBEDDED_NHANES, ROOT
from .fakesampler import use_fake_sampler
from .toydata import base_config, glm_frame

N = 60


def cohort() -> pd.DataFrame:
    """N people: two exposures, age, sex, a gaussian outcome y and an id."""
    frame, _ = glm_frame(N, "gaussian", seed=4)
    frame["id"] = np.arange(N)
    return frame


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it in a folder, the exit code and what the message names."""

    name: str
    make: Callable[[Path], list[str]]  # writes files into the folder, returns fit.py's argv
    code: int
    message: str  # regex the terminal output must match


def table_case(
    name: str,
    edit: Callable[[pd.DataFrame], pd.DataFrame],
    message: str,
    code: int = 2,
    **table,
) -> Case:
    """A CSV cohort changed by `edit`, with a config for it."""

    def make(folder: Path) -> list[str]:
        edit(cohort()).to_csv(folder / "cohort.csv", index=False)
        (folder / "c.yaml").write_text(yaml.safe_dump(base_config(**table)))
        return ["c.yaml"]

    return Case(name, make, code, message)


def config_case(name: str, text: str | bytes, message: str, extra: list[str] = ()) -> Case:
    """A config file with the given content beside a valid cohort."""

    def make(folder: Path) -> list[str]:
        cohort().to_csv(folder / "cohort.csv", index=False)
        (folder / "other.yaml").write_text(yaml.safe_dump(base_config()))
        path = folder / "c.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["c.yaml", *extra]

    return Case(name, make, 2, message)


def set_cell(column: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    return edit


def assign(**columns) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: frame.assign(**columns)


def raw_file(content: bytes, message: str) -> Case:
    def make(folder: Path) -> list[str]:
        (folder / "cohort.csv").write_bytes(content)
        (folder / "c.yaml").write_text(yaml.safe_dump(base_config()))
        return ["c.yaml"]

    return Case("file " + message[:20], make, 2, message)


BINARY = {"family": "bernoulli"}
CASES = [
    # text where numbers belong: named column, line and value, never dummy-coded or dropped
    table_case("<LOD in an exposure", set_cell("e1", 3, "<LOD"), r"'e1'.*'<LOD'.*line\(s\) 5"),
    table_case("'twelve' in age", set_cell("age", 5, "twelve"), r"'age' mixes.*'twelve'.*line"),
    table_case("inf outcome", set_cell("y", 2, np.inf), r"'y'.*infinite.*line\(s\) 4"),
    table_case("inf exposure", set_cell("e2", 0, "inf"), r"'e2'.*infinite"),
    table_case("zero exposure", set_cell("e2", 7, 0.0), r"exposure 'e2'.*<= 0"),
    table_case("negative exposure", set_cell("e1", 1, -2.0), r"exposure 'e1'.*<= 0"),
    # no variation: nothing to learn, the prior would be reported as a result
    table_case("constant exposure", assign(e2=10.0), r"exposure 'e2' is constant"),
    table_case("near-constant exposure", assign(e2=lambda f: 10 + 1e-9 * f.age), r"'e2'.*constant"),
    table_case("constant outcome", assign(y=1.5), r"outcome 'y' is constant"),
    table_case("constant covariate", assign(age=40.0), r"covariate 'age' is constant"),
    table_case("one-level factor", assign(sex="male"), r"covariate 'sex' has a single level"),
    # binary outcomes
    table_case("binary not 0/1", assign(y=lambda f: (f.y > 0) * 2.0), r"must be 0/1", **BINARY),
    table_case("binary no cases", assign(y=0.0), r"0 case\(s\).*needs both", **BINARY),
    # rows and ids
    table_case("2-row table", lambda f: f.head(2), r"2 row\(s\).*at least"),
    table_case("14-row table", lambda f: f.head(14), r"14 row\(s\).*5 regression.*at least 15"),
    table_case("duplicated ids", set_cell("id", 4, 3), r"id column 'id'.*duplicated", id="id"),
    # names bayesmetal uses itself, names given twice
    table_case(
        "exposure named SEQN",
        lambda f: f.rename(columns={"e2": "SEQN"}),
        r"SEQN.*"
        r"names bayesmetal uses",
        exposures=["e1", "SEQN"],
        id="id",
    ),
    table_case(
        "outcome as a covariate",
        lambda f: f,
        r"'y' is listed twice \(outcome and "
        r"covariates\)",
        covariates=["age", "y"],
    ),
    table_case(
        "exposure twice",
        lambda f: f,
        r"'e1' is listed twice \(exposures\)",
        exposures=["e1", "e2", "e1"],
    ),
    raw_file(b"y,e1,e2,age,sex,e1\n1,2,3,40,male,4\n", r"column name\(s\) e1 appear twice"),
    raw_file(b"PK\x03\x04rest of a workbook", r"not a CSV file but an Excel workbook"),
    raw_file("y,e1\n1,2\n".encode("utf-16"), r"not a CSV file but UTF-16 text"),
    # files
    raw_file(b"", r"the file is empty"),
    raw_file(b"y,e1,e2,age,sex\n", r"header but no rows"),
    raw_file(b'y,e1\n1,"2\n', r"not a readable CSV"),
    table_case("unknown encoding", lambda f: f, r"not an encoding", encoding="klingon"),
    table_case("missing column", lambda f: f.drop(columns="e2"), r"no column\(s\) e2"),
    # configuration
    config_case("non-UTF-8 config", b"model:\n  name: gl\xe9m\n", r"c.yaml: not UTF-8"),
    config_case("include a number", "include: [other.yaml, 5]\n", r"'include' entries.*5"),
    config_case(
        "output name escapes",
        "include: other.yaml\noutput:\n  name: ../../x\n",
        r"output.name.*not a plain folder name",
    ),
    config_case(
        "negative prior sd",
        "include: other.yaml\npriors:\n  beta: {distribution: Normal, mu: 0, sigma: -1}\n",
        r"priors.beta.*outside their range",
    ),
    config_case(
        "misspelled distribution",
        "include: other.yaml\npriors:\n  beta: {distribution: Gama, alpha: 1, beta: 1}\n",
        r"priors.beta.*Gama",
    ),
    config_case(
        "normal prior for a scale",
        "include: other.yaml\npriors:\n  sigma: {distribution: Normal}\n",
        r"priors.sigma.*must be positive",
    ),
    config_case("typo in a key", "include: other.yaml\nsampler:\n  drawz: 5\n", r"'draws'"),
    config_case(
        "key of another model",
        "include: other.yaml\nmodel:\n  name: glm\n  direction: positive\n",
        r"model.glm.direction: key 'direction' is not valid here",
    ),
    config_case("not YAML", "model: [glm\n", r"not valid YAML"),
    config_case("bad --set", "include: other.yaml\n", r"--set", ["--set", "sampler.draws"]),
]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_a_named_error_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    argv = case.make(tmp_path)
    before = snapshot(tmp_path)
    code = fit_main([*argv, "--out", "run"])
    printed = capsys.readouterr()
    assert code == case.code, printed.err
    assert re.search(case.message, printed.err), printed.err
    assert "Traceback" not in printed.err
    assert snapshot(tmp_path) == before  # nothing written, nothing changed


def good_table(folder: Path, **table) -> list[str]:
    cohort().to_csv(folder / "cohort.csv", index=False)
    (folder / "c.yaml").write_text(yaml.safe_dump(base_config(**table)))
    return ["c.yaml"]


def test_latin1_table_is_read_and_said(tmp_path, monkeypatch, capsys):
    """Excel's Windows-1252 CSV: read (accents intact) and the flow table says so."""
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    frame = cohort().assign(sex=lambda f: f.sex.astype(str).replace({"male": "mâle"}))
    frame.to_csv("cohort.csv", index=False, encoding="cp1252")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(base_config()))
    assert fit_main(["c.yaml", "--out", "run"]) == 0
    flow = pd.read_csv(tmp_path / "run" / "flow.csv")
    assert "read as cp1252: not UTF-8" in flow["step"].iloc[0]
    diagnostics = pd.read_csv(tmp_path / "run" / "diagnostics.csv")
    assert "gamma[sex[mâle]]" in diagnostics["parameter"].tolist()


def test_parquet_table_gives_the_same_result_as_csv(tmp_path, monkeypatch):
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    cohort().to_parquet("cohort.parquet")
    good_table(tmp_path)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(base_config("cohort.parquet")))
    assert fit_main(["c.yaml", "--out", "csv"]) == 0
    assert fit_main(["p.yaml", "--out", "parquet"]) == 0
    for name in ("effects.csv", "flow.csv"):
        csv = pd.read_csv(tmp_path / "csv" / name)
        parquet = pd.read_csv(tmp_path / "parquet" / name)
        pd.testing.assert_frame_equal(
            csv.drop(columns="step", errors="ignore"), parquet.drop(columns="step", errors="ignore")
        )


def test_missing_values_leave_at_a_counted_flow_step(tmp_path, monkeypatch):
    """Empty cells are missing values, not errors: each row leaves at one named step."""
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    frame = cohort()
    frame.loc[[1, 2], "e1"] = np.nan
    frame.loc[3, "age"] = np.nan
    frame.to_csv("cohort.csv", index=False)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(base_config()))
    assert fit_main(["c.yaml", "--out", "run"]) == 0
    flow = pd.read_csv(tmp_path / "run" / "flow.csv").set_index("step")
    assert flow.loc["missing e1", "excluded"] == 2 and flow.loc["missing age", "excluded"] == 1
    assert flow["n_after"].iloc[-1] == N - 3


# ----------------------------------------------------------------------------- outputs


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, monkeypatch, capsys):
    """`--out DIR --overwrite` used to delete everything in DIR; `--out models` every run."""
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    good_table(tmp_path)
    assert fit_main(["c.yaml", "--out", "models/first"]) == 0
    (tmp_path / "models" / "notes.txt").write_text("my notes")
    before = snapshot(tmp_path)
    refusals = {"models": "not a bayesmetal run folder", ".": "is the current folder"}
    for target, message in refusals.items():
        capsys.readouterr()
        assert fit_main(["c.yaml", "--out", target, "--overwrite"]) == 2
        assert message in capsys.readouterr().err
    assert snapshot(tmp_path) == before
    assert fit_main(["c.yaml", "--out", "models/first", "--overwrite"]) == 0  # a run: replaced


def test_existing_run_is_not_replaced_without_overwrite(tmp_path, monkeypatch, capsys):
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    good_table(tmp_path)
    assert fit_main(["c.yaml", "--out", "run"]) == 0
    before = snapshot(tmp_path)
    assert fit_main(["c.yaml", "--out", "run"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_second_writer_to_the_same_folder_fails_cleanly(tmp_path, monkeypatch, capsys):
    """Two fits to one --out: the second stops at once (the lock is held while the first
    samples) and the first completes; before, the second deleted the first's folder."""
    monkeypatch.chdir(tmp_path)
    good_table(tmp_path)
    codes = []

    def sample_while_another_starts(fit, spec, seed_offset=0):
        codes.append(fit_main(["c.yaml", "--out", "run"]))  # the second writer
        from .fakesampler import prior_as_posterior

        return prior_as_posterior(fit.build(), spec, seed_offset)

    monkeypatch.setitem(engines.ENGINES, engines.PYMC, sample_while_another_starts)
    assert fit_main(["c.yaml", "--out", "run"]) == 0
    assert codes == [2]
    assert re.search(
        r"another bayesmetal process \(pid \d+, still running\) is writing", capsys.readouterr().err
    )
    assert (tmp_path / "run" / "idata.nc").is_file()


# ----------------------------------------------------------------------------- faults


def test_ctrl_c_during_sampling_exits_130_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    good_table(tmp_path)
    before = snapshot(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setitem(engines.ENGINES, engines.PYMC, interrupted)
    assert fit_main(["c.yaml", "--out", "run"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert snapshot(tmp_path) == before and not list(tmp_path.glob(".run*"))


def test_pymc_partial_trace_after_ctrl_c_is_not_saved_as_a_result(monkeypatch):
    """PyMC catches Ctrl-C and returns the draws it has: that must not become a run."""
    import pymc as pm

    from bayesmetal.run_schema import SamplerSpec
    from bayesmetal.sampling import sample

    spec = SamplerSpec(chains=2, tune=5, draws=10, seed=1, progressbar=False)
    with pm.Model() as model:
        pm.Normal("x")

    def partial(**kwargs):
        from .fakesampler import prior_as_posterior

        return prior_as_posterior(model, spec.model_copy(update={"draws": 4}))

    monkeypatch.setattr(pm, "sample", partial)
    with pytest.raises(KeyboardInterrupt, match="4 of 2 x 10 draws"):
        sample(model, spec)


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    good_table(tmp_path)
    before = snapshot(tmp_path)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "run/idata.nc")

    monkeypatch.setattr(runs, "write_posterior", disk_full)
    assert fit_main(["c.yaml", "--out", "run"]) == 3
    err = capsys.readouterr().err
    assert "the disk is full" in err and "Traceback" not in err
    assert snapshot(tmp_path) == before and not list(tmp_path.glob(".run*"))


def test_unexpected_error_is_one_line_with_a_log_of_the_traceback(tmp_path, monkeypatch, capsys):
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BAYESMETAL_LOG_DIR", str(tmp_path / "logs"))
    good_table(tmp_path)

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(workflow, "declare", bug)
    assert fit_main(["c.yaml", "--out", "run"]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unexpected ZeroDivisionError: a bug" in err
    (log,) = (tmp_path / "logs").glob("fit-*.log")
    assert (
        str(log) in err and "Traceback" in log.read_text() and "declare(config" in log.read_text()
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("chains", "draws"), [(2, 1), (2, 2), (2, 3), (2, 4), (1, 1)])
def test_diagnostics_take_any_number_of_draws(chains, draws, tmp_path, monkeypatch, capsys):
    """draws < 4 used to end in a KeyError/ValueError in the diagnostics; one chain of one
    draw was then called converged (every parameter 'constant')."""
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    good_table(tmp_path)
    sampler = ["--set", f"sampler.draws={draws}", "--set", f"sampler.chains={chains}"]
    assert fit_main(["c.yaml", "--out", "run", *sampler]) == 0
    out = capsys.readouterr().out
    assert "NOT CONVERGED" in out
    if draws < 4:
        assert f"{draws} draws per chain: R-hat and ESS need at least 4" in out


def test_ctrl_c_stops_bkmr_chains_at_once(tmp_path):
    """A real SIGINT to fit.py while 4 BKMR chains run on 2 worker processes: it used to wait
    for the queued chains (about 50 s on the main job); now the workers are stopped at once,
    without a traceback per worker, and nothing is written."""
    cohort().to_csv(tmp_path / "cohort.csv", index=False)
    mapping = base_config() | {
        "model": {"name": "bkmr"},
        "sampler": {"chains": 4, "cores": 2, "tune": 100, "draws": 10**6, "seed": 1},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(mapping))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "fit.py"), "c.yaml", "--out", "run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    for line in process.stdout:  # the flow table is printed before sampling starts
        if not line.strip():
            break
    time.sleep(3)
    process.send_signal(signal.SIGINT)
    start = time.monotonic()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and time.monotonic() - start < 10
    assert "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "cohort.csv"]


@pytest.mark.parametrize("cut", ["half", "between observations"])
@pytest.mark.parametrize("command", ["fit", "describe"])
def test_cut_xpt_file_is_an_error_not_a_smaller_cohort(cut, command, tmp_path, capsys):
    """The embedded PBCD_J.XPT cut short used to give 4,170 of 8,366 rows and a cohort of 611
    instead of 1,226, exit 0, in fit.py and describe.py alike."""
    data = tmp_path / "nhanes"
    shutil.copytree(EMBEDDED_NHANES, data)
    path = data / "2017-2018" / "PBCD_J.XPT"
    layout = xpt.read_layout(path)
    rows = (path.stat().st_size - layout.data_start) // layout.row_length
    end = layout.data_start + rows // 2 * layout.row_length
    path.write_bytes(path.read_bytes()[: end if cut != "half" else path.stat().st_size // 2])
    before = snapshot(tmp_path)
    config = str(CONFIGS / "glm_multi_lumbar.yaml")
    out = str(tmp_path / "out")
    if command == "fit":
        code = fit_main([config, "--data-dir", str(data), "--out", out])
    else:
        code = describe_main([config, "--data-dir", str(data), "--out", out])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert re.search(r"PBCD_J\.XPT is (truncated|corrupt).*fetch_nhanes\.py", err), err
    assert snapshot(tmp_path) == before


def test_exposure_names_that_are_not_file_names_stay_in_the_run(tmp_path, monkeypatch):
    """Per-exposure fits name files: 'Pb (ug/dL)' used to lose the posterior, '../x' to write
    outside the run folder."""
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    names = {"e1": "Pb (ug/dL)", "e2": "../../escaped"}
    cohort().rename(columns=names).to_csv("cohort.csv", index=False)
    mapping = base_config(exposures=list(names.values())) | {
        "model": {"name": "glm", "kind": "single"}
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(mapping))
    assert fit_main(["c.yaml", "--out", "run"]) == 0
    written = sorted(p.name for p in (tmp_path / "run").glob("idata_*.nc"))
    assert written == ["idata_single_.._.._escaped.nc", "idata_single_Pb__ug_dL_.nc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "cohort.csv", "run"]


def test_describe_refuses_a_table_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    good_table(tmp_path)
    assert describe_main(["c.yaml", "--out", "d"]) == 2
    assert "describe.py needs a cohort" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_summarise_keeps_user_files_and_a_failed_one_changes_nothing(tmp_path, monkeypatch, capsys):
    """--summarise used to delete anything but the posterior (a notes file) and, when
    interrupted, to replace a complete run's summaries by summaries_failed.txt."""
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BAYESMETAL_LOG_DIR", str(tmp_path / "logs"))
    good_table(tmp_path)
    assert fit_main(["c.yaml", "--out", "run"]) == 0
    (tmp_path / "run" / "notes.txt").write_text("my notes")
    assert fit_main(["--summarise", "run"]) == 0
    assert (tmp_path / "run" / "notes.txt").read_text() == "my notes"
    before = snapshot(tmp_path / "run")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(workflow, "summarise", interrupted)
    assert fit_main(["--summarise", "run"]) == 130
    assert "left as it was" in capsys.readouterr().err
    assert snapshot(tmp_path / "run") == before


def test_prior_transform_reaches_the_fit(tmp_path, monkeypatch):
    """`transform:` was accepted and dropped; now the fitted beta is exp(Normal) > 0."""
    use_fake_sampler(monkeypatch)
    monkeypatch.chdir(tmp_path)
    good_table(tmp_path)
    prior = "priors.beta={distribution: Normal, mu: 0, sigma: 1, transform: exp}"
    assert fit_main(["c.yaml", "--out", "run", "--set", prior]) == 0
    effects = pd.read_csv(tmp_path / "run" / "effects.csv")
    assert (effects["lower"] > 0).all()
