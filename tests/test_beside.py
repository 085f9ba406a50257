"""Which run a survey run's report puts beside it: the newest unweighted fit of the same
analysis in the same folder, nothing else."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from bayesmetal.beside import unweighted_twin
from bayesmetal.runs import FAILURE_FILE, RUN_MARKER

ANALYSIS = {
    "analysis": {"outcome": "lumbar_bmd", "covariates": ["age", "sex"]},
    "model": {"name": "glm", "kind": "multi"},
    "priors_resolved": {"beta": {"distribution": "Normal", "mu": 0, "sigma": 1}},
    "summaries": {"ci_prob": 0.95},
    "provenance": {"n": 1226, "data_files_sha256": {"DEMO_J.XPT": "abc"}, "versions": {}},
}


def _run(root: Path, name: str, kind: str = "fit", age: int = 0, **changes) -> Path:
    """A finished run folder of `ANALYSIS` with `changes` (top-level keys replaced)."""
    folder = root / name
    folder.mkdir()
    config = {**ANALYSIS, "survey": False, "sampler": {"draws": 1000}, **changes}
    (folder / "config.resolved.yaml").write_text(yaml.safe_dump(config))
    (folder / RUN_MARKER).write_text(json.dumps({"kind": kind}))
    os.utime(folder / RUN_MARKER, (1_000_000 + age, 1_000_000 + age))
    return folder


def test_the_newest_unweighted_run_of_the_same_analysis(tmp_path):
    survey = {**ANALYSIS, "survey": {"weight": "WTMEC2YR"}, "sampler": {"draws": 2000}}
    assert unweighted_twin(tmp_path, survey) is None
    _run(tmp_path, "older", age=1)
    newer = _run(tmp_path, "newer", age=5, sampler={"draws": 300})  # sampling may differ
    _run(tmp_path, "newest_but_weighted", age=9, survey={"weight": "WTMEC2YR"})
    _run(tmp_path, "other_outcome", age=9, analysis={"outcome": "total_bmd"})
    _run(tmp_path, "other_prior", age=9, priors_resolved={})
    _run(tmp_path, "other_data", age=9, provenance={"n": 1226, "data_files_sha256": {}})
    _run(tmp_path, "other_interval", age=9, summaries={"ci_prob": 0.9})
    _run(tmp_path, "a_comparison", kind="compare", age=9)
    (tmp_path / "loose_file.yaml").write_text("survey: false\n")
    (newer / "pips.csv").write_text("variable,pip\ne1,0.5\n")  # a headline table
    assert unweighted_twin(tmp_path, survey).path == newer
    # never a folder being written or set aside, nor one whose summaries failed
    for name in (".newer.partial-12@host.x", ".newer.old-3"):
        (_run(tmp_path, name, age=20) / "pips.csv").write_text("variable,pip\ne1,0.5\n")
    failed = _run(tmp_path, "failed_summaries", age=20)
    (failed / FAILURE_FILE).write_text("Traceback ...")
    assert unweighted_twin(tmp_path, survey).path == newer
    # a newer run without headline tables is passed over for the next newest that has them
    _run(tmp_path, "no_tables", age=30)
    assert unweighted_twin(tmp_path, survey).path == newer
