"""Studies: a study file crossed into ordinary run configs, the config-hash cache and resume,
the Dask path on a LocalCluster (fast, with trivial tasks), and a small study end to end with
real fits (slow)."""

from __future__ import annotations

import copy
import fnmatch
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bayesmetal.config import parse_config
from bayesmetal.errors import ConfigError
from bayesmetal.runs import FAILURE_FILE, RUN_MARKER
from bayesmetal.study import fit_hash, load_study
from bayesmetal.study_cli import study_main
from bayesmetal.study_report import sensitivity_table
from bayesmetal.study_runner import Task, pending_tasks, run_dask

from .conftest import CONFIGS


def _study_file(folder, **changes) -> str:
    """data.csv (two outcomes, three exposures, a survey design) and study.yaml on it."""
    rng = np.random.default_rng(3)
    n = 200
    frame = pd.DataFrame(np.exp(rng.normal(size=(n, 3))), columns=["e1", "e2", "e3"])
    frame["age"] = rng.normal(size=n)
    frame["sex"] = rng.choice(["male", "female"], n)
    frame["y"] = 0.4 * np.log(frame["e1"]) + 0.3 * frame["age"] + rng.normal(0, 1, n)
    frame["y2"] = -0.3 * np.log(frame["e2"]) + rng.normal(0, 1, n)
    frame["w"] = rng.uniform(0.5, 2, n)
    frame["stratum"] = np.arange(n) % 5
    frame["psu"] = (np.arange(n) // 5) % 2
    frame.to_csv(folder / "data.csv", index=False)
    study = {
        "table": {
            "path": "data.csv",
            "outcome": "y",
            "family": "gaussian",
            "exposures": ["e1", "e2", "e3"],
            "weight": "w",
        },
        "survey": {"strata": "stratum", "psu": "psu"},
        "study": "toy",
        "description": "a toy study",
        "outcomes": ["y", "y2"],
        "covariate_sets": {"m1": ["age"], "m2": ["age", "sex"]},
        "weighting": ["unweighted", "survey"],
        "analyses": [
            {"model": {"name": "glm", "kind": "single"}},
            {"model": {"name": "glm", "kind": "multi"}, "covariates": ["m2"]},
            {
                "model": {"name": "bkmr", "knots": 10, "summaries": {"ngrid": 5}},
                "covariates": ["m2"],
                "outcomes": ["y"],
                "sampler": {"draws": 60},
            },
        ],
        "sensitivity": [
            {
                "name": "tight",
                "analysis": "glm_multi",
                "priors": {"beta": {"distribution": "Normal", "mu": 0, "sigma": 0.1}},
            }
        ],
        "sampler": {"chains": 2, "tune": 50, "draws": 50, "seed": 5},
        "output": {"root": "out"},
        **changes,
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return str(path)


def test_a_study_crosses_into_run_configs(tmp_path):
    study = load_study(_study_file(tmp_path))
    labels = [f.label for f in study.fits]
    # glm_single: 2 outcomes x 2 sets x 2 weightings; glm_multi: 2 x 1 x 2; bkmr: 1 x 1 x 2;
    # the variant: glm_multi's last set, each outcome, unweighted
    assert len(labels) == 8 + 4 + 2 + 2 and len(set(labels)) == len(labels)
    assert "glm_single.y2.m1.survey" in labels and "glm_multi.y.m2.tight" in labels
    by_label = {f.label: f for f in study.fits}
    single = by_label["glm_single.y2.m1.survey"].config
    assert single.table.outcome == "y2" and single.table.covariates == ["age"]
    assert single.survey_design() is not None and single.model.kind == "single"
    bkmr = by_label["bkmr.y.m2"].config
    assert bkmr.sampler.draws == 60 and bkmr.sampler.chains == 2 and bkmr.survey is False
    tight = by_label["glm_multi.y.m2.tight"].config
    assert tight.priors["beta"].parameters["sigma"] == 0.1
    assert study.folder == tmp_path / "out" / "toy"
    assert study.describe_mapping is None  # a table, not a cohort


@pytest.mark.parametrize(
    "change, message",
    [
        ({"analyses": [{"model": {"name": "glm"}, "covariates": ["m3"]}]}, r"\['m3'\] not in"),
        ({"sensitivity": [{"name": "x", "analysis": "bwqs", "priors": {"a": 1}}]}, "'bwqs'"),
        ({"analyses": [{"model": {"name": "glm", "kind": "pairs"}}]}, "glm_pairs"),
        ({"weighting": ["weighted"]}, "weighting"),
        ({"covariate_sets": {"model 1": ["age"]}}, "folder name"),
    ],
)
def test_bad_studies_are_refused_by_name(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_study(_study_file(tmp_path, **change))
    assert "study.yaml" in str(error.value)


def test_the_hash_follows_what_decides_a_result(tmp_path):
    study = load_study(_study_file(tmp_path))
    fit = study.fits[0]

    def hashed(change) -> str:
        mapping = copy.deepcopy(fit.mapping)
        change(mapping)
        return fit_hash(parse_config(mapping, "test"))

    # how it runs and where it is written: the same fit
    assert hashed(lambda m: m["sampler"].update(progressbar=False, cores=1)) == fit.hash
    assert hashed(lambda m: m.update(output={"root": "elsewhere"})) == fit.hash
    assert hashed(lambda m: m["sampler"].update(target_accept=0.9)) == fit.hash  # the default
    # what it finds: another fit
    assert hashed(lambda m: m["sampler"].update(draws=51)) != fit.hash
    assert hashed(lambda m: m["sampler"].update(seed=6)) != fit.hash
    changed = load_study(_study_file(tmp_path), ["sampler.draws=51"])
    unchanged = {a.label for a, b in zip(study.fits, changed.fits, strict=True) if a.hash == b.hash}
    assert unchanged == {"bkmr.y.m2", "bkmr.y.m2.survey"}  # BKMR's own draws: 60
    # the table's content (same path, another row changed)
    frame = pd.read_csv(tmp_path / "data.csv")
    frame.loc[0, "y"] += 1
    frame.to_csv(tmp_path / "data.csv", index=False)
    edited = load_study(str(tmp_path / "study.yaml"))
    assert all(a.hash != b.hash for a, b in zip(study.fits, edited.fits, strict=True))


def _complete(study, fit, failed: bool = False) -> None:
    """A run folder as fit.py leaves it (with summaries_failed.txt where they failed)."""
    folder = study.fit_folder(fit)
    folder.mkdir(parents=True)
    (folder / RUN_MARKER).write_text(json.dumps({"kind": "fit"}))
    if failed:
        (folder / FAILURE_FILE).write_text("Traceback ...")


def test_finished_fits_are_reused_and_the_rest_resume(tmp_path, capsys):
    path = _study_file(tmp_path)
    study = load_study(path)
    by_label = {f.label: f for f in study.fits}
    done = [by_label["glm_single.y.m1"]]
    for fit in done:
        _complete(study, fit)
    failed = by_label["glm_multi.y.m2"]
    _complete(study, failed, failed=True)
    tasks = pending_tasks(study, cores_per_fit=1)
    labels = [t.label for t in tasks]
    assert set(labels) == {f.label for f in study.fits} - {f.label for f in done}
    # unweighted first; a survey fit waits for its twin where the twin is still to run
    surveys = [label.endswith(".survey") for label in labels]
    assert surveys == sorted(surveys)
    waits = {t.label: t.after for t in tasks}
    assert waits["glm_multi.y.m2.survey"] == "glm_multi.y.m2"
    assert waits["glm_single.y2.m1.survey"] == "glm_single.y2.m1"
    assert waits["glm_single.y.m1.survey"] is None  # its twin is done: nothing to wait for
    # summaries that failed are redone from the saved posterior, not refitted
    redo = next(t for t in tasks if t.label == failed.label)
    assert redo.args == ("--summarise", str(study.fit_folder(failed)))
    task = next(t for t in tasks if t.label == "glm_single.y2.m1")
    config, out = Path(task.args[0]), Path(task.args[2])
    written = yaml.safe_load(config.read_text())
    assert Path(written["table"]["path"]).is_absolute() and out == study.fit_folder(
        by_label["glm_single.y2.m1"]
    )
    assert task.args[-2:] == ("--set", "sampler.cores=1")
    assert study_main([path, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("study toy: 16 fits")
    assert sum(" done " in line for line in lines) == 1


def test_dask_runs_every_task_on_a_local_cluster_in_order(tmp_path):
    write = "import sys, pathlib, time; time.sleep(float(sys.argv[2])); pathlib.Path(sys.argv[1])"
    write += ".write_text('x')"
    first = Task("first", write, (str(tmp_path / "first"), "2"), tmp_path / "first.log")
    # waits for `first`: fails unless its file is there when it starts
    check = f"import sys, pathlib; sys.exit(0 if pathlib.Path({str(tmp_path / 'first')!r})"
    check += ".exists() else 5)"
    second = Task("second", check, (), tmp_path / "second.log", after="first")
    other = Task("other", write, (str(tmp_path / "other"), "0"), tmp_path / "other.log")
    failing = Task("bad", "import sys; sys.exit(4)", (), tmp_path / "bad.log")
    seen = []
    outcomes = run_dask([first, second, other, failing], seen.append, workers=2)
    assert [o.label for o in seen] == [o.label for o in outcomes]
    assert {o.label: o.code for o in outcomes} == {"first": 0, "second": 0, "other": 0, "bad": 4}
    assert (tmp_path / "other").read_text() == "x"


@pytest.mark.slow
def test_a_small_study_end_to_end_resumes_and_matches_on_dask(tmp_path, capsys):
    analyses = [
        {"model": {"name": "glm", "kind": "single"}, "covariates": ["m1"]},
        {"model": {"name": "glm", "kind": "multi"}, "covariates": ["m2"]},
        {
            "model": {"name": "bkmr", "knots": 10, "summaries": {"ngrid": 5}},
            "covariates": ["m2"],
            "sampler": {"draws": 60},
        },
    ]
    analyses.append({"model": {"name": "glm", "kind": "quantile"}, "covariates": ["m1"]})
    subgroups = {"by": ["sex"], "analyses": ["glm_multi"]}
    # 11 fits: 4 analyses x 2 weightings, the prior variant, the subgroup fit x 2 weightings
    path = _study_file(tmp_path, outcomes=["y"], analyses=analyses, subgroups=subgroups)
    study = load_study(path)
    assert len(study.fits) == 11
    assert study_main([path, "--sequential"]) == 0
    report = (study.folder / "report.html").read_text()
    sections = ("glm_single", "glm_multi", "bkmr", "glm_quantile", "subgroups")
    for section in (*sections, "prior sensitivity", "model comparison", "convergence"):
        assert f">{section}</h2>" in report, section
    results = pd.read_csv(study.folder / "results.csv")
    assert set(results["analysis"]) == {"glm_single", "glm_multi", "bkmr", "glm_quantile"}
    trend = results[results["quantity"] == "P for trend"]
    assert len(trend) == 3 * 2 and trend["estimate"].between(0, 1).all()  # 3 metals, 2 weightings
    assert len(pd.read_csv(study.folder / "convergence.csv")) == len(study.fits)
    strata = pd.read_csv(study.folder / "subgroups.csv")
    assert set(strata["level"]) == {"all", "female", "male"}
    assert strata.loc[strata["subgroup"] == "sex", "p_interaction"].between(0, 1).all()
    figure = study.folder / "figures" / "subgroups_glm_multi.y.m2.unweighted.png"
    assert figure.is_file() and "P for interaction" in report
    comparison = pd.read_csv(study.folder / "model_comparison.csv")
    # m1: 3 single GLMs and the quantile GLM's 3 quartile and 3 trend fits; m2: GLM and BKMR
    assert len(comparison) == 3 + 6 + 2 and comparison["elpd_diff"].max() == 0
    assert "bkmr" in set(comparison["model"])
    # a survey run found its unweighted twin among the study's fits
    survey_multi = next(f for f in study.fits if f.label == "glm_multi.y.m2.survey")
    assert (study.fit_folder(survey_multi) / "weighted_vs_unweighted.csv").is_file()
    # as after a kill: two fits missing; the rerun (on Dask) redoes those two only
    lost = [study.fits[0], study.fits[-1]]
    kept = pd.read_csv(study.fit_folder(lost[0]) / "effects.csv")
    for fit in lost:
        shutil.rmtree(study.fit_folder(fit))
    capsys.readouterr()
    assert study_main([path, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 to run on Dask (local cluster, 2 workers), 9 of 11 fits reused" in out
    assert out.count("] ") == 2
    # the same seed gives the same draws however the fit is run (chains on one core here)
    pd.testing.assert_frame_equal(pd.read_csv(study.fit_folder(lost[0]) / "effects.csv"), kept)


def test_a_prior_variant_is_compared_with_the_unweighted_main_fit(tmp_path):
    study = load_study(_study_file(tmp_path))
    by_label = {f.label: f for f in study.fits}
    intervals = {  # Pb's interval: the survey fit's is wider and covers 0
        "glm_multi.y.m2": (0.05, 0.15),
        "glm_multi.y.m2.survey": (-0.05, 0.25),
        "glm_multi.y.m2.tight": (0.04, 0.16),
    }
    for label, (lower, upper) in intervals.items():
        fit = by_label[label]
        _complete(study, fit)
        folder = study.fit_folder(fit)
        config = {"model": {"name": "glm"}, "priors_resolved": fit.mapping["priors"]}
        (folder / "config.resolved.yaml").write_text(yaml.safe_dump(config))
        effects = pd.DataFrame(
            {"fit": ["multi"], "term": ["Pb"], "measure": ["beta"], "estimate": [0.1]}
            | {"estimate_is": ["median"], "lower": [lower], "upper": [upper]}
        )
        effects.to_csv(folder / "effects.csv", index=False)
    table = sensitivity_table(study)
    assert table["variant"].tolist() == ["tight"]
    assert table.loc[0, "conclusions that change"] == "none"


SHIPPED_STUDIES = sorted(p.name for p in (CONFIGS / "studies").glob("*.yaml"))


@pytest.mark.slow  # every fit's priors are checked in a throwaway model: 10-15 s a study
@pytest.mark.parametrize("name", SHIPPED_STUDIES)
def test_shipped_studies_load_with_every_fit_valid(name):
    study = load_study(CONFIGS / "studies" / name)
    assert study.spec.study == name.removesuffix(".yaml") and len(study.fits) >= 8
    assert study.describe_mapping is not None  # each is a cohort's study
    assert {f.survey for f in study.fits} == {False, True}


# the published designs on synthetic NHANES files: a few fits of each, short chains
PUBLISHED = {
    "children_bmd.yaml": ["glm_multi.lumbar_bmd.model_1*"],
    "postmeno_op.yaml": ["glm_quantile.osteoporosis.model_1", "bwqs_positive.femoral_neck_bmd.*"],
    "midage_op.yaml": ["bwqs_positive.osteoporosis.model_3*", "*.by_sex"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_studies_run_on_synthetic_files(name, synthetic_nhanes, tmp_path, capsys):
    settings = [f"data.nhanes_dir={synthetic_nhanes}", f"output.root={tmp_path}"]
    settings += ["sampler.chains=2", "sampler.tune=100", "sampler.draws=100"]
    args = [str(CONFIGS / "studies" / name), "--sequential"]
    args += [item for s in settings for item in ("--set", s)]
    args += [item for p in PUBLISHED[name] for item in ("--only", p)]
    assert study_main(args) == 0
    study = load_study(CONFIGS / "studies" / name, settings)
    ran = [f for f in study.fits if study.done(f)]
    assert ran and all(any(fnmatch.fnmatchcase(f.label, p) for p in PUBLISHED[name]) for f in ran)
    report = (study.folder / "report.html").read_text()
    assert ">cohort</h2>" in report and ">convergence</h2>" in report
    assert report.count("not run") >= len(study.fits) - len(ran)
    assert (study.describe_folder / "table1.csv").is_file()
