"""scripts/compare.py and bayesmetal.compare: alignment of the headline tables, the "what
changed" rules, the config diff and the errors, on small run folders written here."""

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from bayesmetal import compare as cmp
from bayesmetal.runs import RUN_MARKER

from .conftest import ROOT

EXPOSURES = ["Pb", "Cd", "Hg"]


def _script():
    spec = importlib.util.spec_from_file_location("compare_script", ROOT / "scripts" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


compare_main = _script()


def config(model="bwqs", **changes):
    """A resolved config as fit.py writes it (the parts compare reads)."""
    base = {
        "analysis": {"outcome": "lumbar_bmd", "covariates": ["sex", "age"]},
        "model": {"name": model, "quantiles": 4, "direction": "free"},
        "priors": {},
        "sampler": {"chains": 4, "draws": 1000, "seed": 1, "progressbar": True},
        "output": {"root": "/somewhere"},
        "source": "configs/x.yaml",
        "priors_resolved": {
            "weights": {"distribution": "Dirichlet", "a": 1.0},
            "b1": {"distribution": "Normal", "mu": 0, "sigma": 2.5},
        },
        "provenance": {"config_file": "configs/x.yaml", "overrides": [], "n": 1226},
    }
    for key, value in changes.items():
        node = base
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return base


def fake_run(folder, cfg=None, kind="fit", **tables):
    """A completed run folder holding `tables` (name -> list of row dicts) as CSVs."""
    folder.mkdir(parents=True)
    (folder / RUN_MARKER).write_text(json.dumps({"kind": kind}))
    (folder / "config.resolved.yaml").write_text(yaml.safe_dump(cfg or config()))
    (folder / "idata.nc").write_bytes(b"")
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    return folder


def weights(values, lower=0.01, upper=0.9, names=EXPOSURES):
    return [
        {"index": "w", "exposure": e, "mean": v, "lower": lower, "upper": upper, "ci_prob": 0.95}
        for e, v in zip(names, values, strict=True)
    ]


def b1(mean, lower, upper):
    return [{"parameter": "b1", "group": "", "mean": mean, "lower": lower, "upper": upper}]


def effects(rows, measure="beta"):
    return [
        {"fit": "multi", "term": t, "measure": measure, "estimate": e, "lower": lo, "upper": hi}
        for t, e, lo, hi in rows
    ]


def changed(result, quantity=None):
    table = result.changes
    if quantity is not None:
        table = table[table["quantity"] == quantity]
    return {(row.item, row.change) for row in table.itertuples()}


def test_alignment_by_quantity_and_item(tmp_path):
    a = fake_run(
        tmp_path / "a", weights=weights([0.5, 0.3, 0.2]), index_effects=b1(-0.1, -0.3, 0.1)
    )
    b = fake_run(
        tmp_path / "b",
        weights=weights([0.6, 0.4], names=["Cd", "Pb"]) + weights([0.05], names=["Se"]),
        index_effects=b1(-0.2, -0.4, 0.0),
    )
    result = cmp.compare([a, b])
    table = result.table.set_index(["quantity", "item"])
    assert table.loc[("weight", "Pb"), "estimate [a]"] == 0.5
    assert table.loc[("weight", "Pb"), "estimate [b]"] == 0.4  # aligned by name, not by row
    assert table.loc[("weight", "Cd"), "difference [b]"] == pytest.approx(0.3)
    assert np.isnan(table.loc[("weight", "Hg"), "estimate [b]"])
    assert np.isnan(table.loc[("weight", "Se"), "estimate [a]"])
    assert table.loc[("index effect", "b1"), "lower [b]"] == -0.4
    assert list(result.table["item"][:3]) == EXPOSURES  # the first run's order first
    text = result.text()
    assert "only in a: weight (Hg)" in text and "only in b: weight (Se)" in text
    assert "another model" not in text and "share no headline" not in text


def test_sign_flip_and_interval_that_stops_excluding_zero(tmp_path):
    a = fake_run(
        tmp_path / "a",
        config(model="glm"),
        effects=effects([("Pb", 0.2, 0.1, 0.3), ("Cd", 0.1, -0.1, 0.3), ("Hg", -0.3, -0.5, -0.1)]),
    )
    b = fake_run(
        tmp_path / "b",
        config(model="glm"),
        effects=effects(
            [("Pb", 0.1, -0.05, 0.25), ("Cd", -0.1, -0.3, 0.1), ("Hg", -0.3, -0.6, -0.2)]
        ),
    )
    result = cmp.compare([a, b])
    assert changed(result) == {("Pb", "interval vs 0"), ("Cd", "sign")}
    detail = result.changes.set_index(["item", "change"]).loc[("Pb", "interval vs 0"), "detail"]
    assert "no longer excludes 0" in detail and "0.2 [0.1, 0.3] -> 0.1 [-0.05, 0.25]" in detail


def test_ratio_estimates_are_judged_against_one(tmp_path):
    rows_a = [("Pb", 1.3, 1.1, 1.5), ("Cd", 0.8, 0.5, 1.2)]
    rows_b = [("Pb", 0.9, 0.7, 1.2), ("Cd", 0.9, 0.6, 1.3)]
    a = fake_run(tmp_path / "a", config(model="glm"), effects=effects(rows_a, "odds ratio"))
    b = fake_run(tmp_path / "b", config(model="glm"), effects=effects(rows_b, "odds ratio"))
    result = cmp.compare([a, b])
    assert changed(result) == {("Pb", "sign"), ("Pb", "interval vs 1")}  # Cd: both below 1


def test_pip_crossing_half_and_h_curve_interval(tmp_path):
    def pips(values):
        return [{"variable": e, "pip": v} for e, v in zip(EXPOSURES, values, strict=True)]

    def curve(lower_pb):
        rows = []
        for variable in ("Pb", "Cd"):
            for k, z in enumerate(np.linspace(-2, 2, 5)):
                low = lower_pb[k] if variable == "Pb" else -1.0
                rows.append(
                    {"variable": variable, "z": z, "concentration": np.exp(z), "est": z / 10}
                    | {"lower": low, "upper": 1.0}
                )
        return rows

    a = fake_run(
        tmp_path / "a",
        config(model="bkmr"),
        pips=pips([0.9, 0.45, 0.2]),
        univariate=curve([-1, -1, -1, -1, 0.1]),
    )
    b = fake_run(
        tmp_path / "b",
        config(model="bkmr"),
        pips=pips([0.4, 0.55, 0.3]),
        univariate=curve([-1.0] * 5),
    )
    result = cmp.compare([a, b])
    assert changed(result, "PIP") == {("Pb", "PIP crosses 0.5"), ("Cd", "PIP crosses 0.5")}
    assert changed(result, "h curve") == {("Pb", "interval vs 0")}
    assert len(result.curves) == 10 and "difference [b]" in result.curves
    assert result.curves.groupby("variable")["point"].max().tolist() == [4, 4]


def test_largest_weight_change(tmp_path):
    a = fake_run(tmp_path / "a", weights=weights([0.5, 0.3, 0.2]))
    b = fake_run(tmp_path / "b", weights=weights([0.3, 0.5, 0.2]))
    c = fake_run(tmp_path / "c", weights=weights([0.6, 0.2, 0.2]))
    result = cmp.compare([a, b, c])
    assert changed(result) == {("Cd", "largest weight")}
    assert set(result.changes["run"]) == {"b"}  # c keeps Pb largest
    assert "Pb (0.5) -> Cd (0.5)" in result.changes["detail"].iloc[0]


def test_config_diff_names_flattened_keys_and_priors(tmp_path):
    a = fake_run(tmp_path / "a", weights=weights([0.5, 0.3, 0.2]))
    alt = config(**{"sampler.draws": 300, "source": "configs/y.yaml", "provenance.n": 1000})
    alt["priors_resolved"]["weights"]["a"] = 0.5
    alt["provenance"]["overrides"] = ["sampler.draws=300"]
    alt["sampler"]["progressbar"] = False
    alt["analysis"].pop("covariates")
    b = fake_run(tmp_path / "b", alt, weights=weights([0.5, 0.3, 0.2]))
    diff = cmp.compare([a, b]).config_diff.set_index("key")
    assert diff.loc["priors.weights"].tolist() == ["Dirichlet(a=1.0)", "Dirichlet(a=0.5)"]
    assert diff.loc["sampler.draws"].tolist() == ["1000", "300"]
    assert diff.loc["provenance.n"].tolist() == ["1226", "1000"]
    assert diff.loc["analysis.covariates"].tolist() == ['["sex", "age"]', cmp.ABSENT]
    ignored = ("source", "provenance.overrides", "sampler.progressbar", "priors.b1")
    assert not set(ignored) & set(diff.index)


def test_different_models_compare_what_they_share(tmp_path):
    a = fake_run(
        tmp_path / "a", weights=weights([0.5, 0.3, 0.2]), index_effects=b1(-0.1, -0.3, 0.1)
    )
    b = fake_run(tmp_path / "b", config(model="glm"), effects=effects([("Pb", 0.2, 0.1, 0.3)]))
    result = cmp.compare([a, b])
    text = result.text()
    assert "b is another model (glm) than a (bwqs)" in text
    assert "a and b share no headline quantity" in text
    assert "only in a: weight (Pb, Cd, Hg); index effect (b1)" in text
    assert "only in b: effect (beta) (Pb)" in text
    assert "model.name: bwqs -> glm" in text and result.changes.empty


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "does not exist"),
        (lambda p: (p.mkdir(), p)[1], "is not a fit run folder"),
        (lambda p: (p.write_text("x"), p)[1], "is a file"),
        (lambda p: fake_run(p, kind="describe", weights=weights([1, 0, 0])), "a describe folder"),
        (lambda p: fake_run(p), "holds no headline tables"),
    ],
    ids=["missing", "empty folder", "file", "describe folder", "no tables"],
)
def test_a_path_that_is_not_a_run_folder_is_a_named_error(tmp_path, capsys, make, message):
    good = fake_run(tmp_path / "good", weights=weights([0.5, 0.3, 0.2]))
    bad = make(tmp_path / "bad")
    with pytest.raises(cmp.NotARunFolderError, match=message):
        cmp.compare([good, bad])
    before = sorted(tmp_path.rglob("*"))
    assert compare_main([str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and message in err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_failed_summaries_say_how_to_finish_them(tmp_path):
    good = fake_run(tmp_path / "good", weights=weights([0.5, 0.3, 0.2]))
    failed = fake_run(tmp_path / "failed")
    (failed / "summaries_failed.txt").write_text("Traceback ...")
    with pytest.raises(cmp.NotARunFolderError, match="fit.py --summarise"):
        cmp.compare([good, failed])


def test_command_writes_a_new_folder_beside_the_runs(tmp_path, capsys):
    a = fake_run(tmp_path / "models" / "a", weights=weights([0.5, 0.3, 0.2]))
    b = fake_run(tmp_path / "models" / "b", weights=weights([0.3, 0.5, 0.2]))
    assert compare_main([str(a), str(b)]) == 0
    out = tmp_path / "models" / "comparisons" / "a-vs-b"
    printed = capsys.readouterr().out
    assert "largest weight: Pb (0.5) -> Cd (0.5)" in printed and f"wrote {out}/" in printed
    for name in (
        "comparison.csv",
        "config_diff.csv",
        "changes.csv",
        "changes.txt",
        "comparison.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert "largest weight" in (out / "changes.txt").read_text()
    assert sorted(p.name for p in a.iterdir()) == sorted(
        [RUN_MARKER, "config.resolved.yaml", "idata.nc", "weights.csv"]
    )  # the runs are untouched
    assert compare_main([str(a), str(b)]) == 2  # never replaced silently
    assert compare_main([str(a), str(b), "--overwrite"]) == 0
    assert compare_main([str(a), str(b), "--out", str(a / "cmp")]) == 2  # not inside a run
    assert compare_main([str(a), str(b), "--out", str(b), "--overwrite"]) == 2  # nor a run
    assert sorted(p.name for p in b.iterdir()) == sorted(
        [RUN_MARKER, "config.resolved.yaml", "idata.nc", "weights.csv"]
    )
    assert compare_main([str(a), str(a)]) == 2


def test_real_run_folders_of_fit_py(tmp_path, monkeypatch, capsys):
    """Two GLM runs written by fit.py (prior draws as the posterior), one with another prior."""
    from bayesmetal.cli import fit_main

    from .fakesampler import use_fake_sampler
    from .toydata import base_config, glm_frame

    use_fake_sampler(monkeypatch)
    glm_frame(200, "gaussian", seed=3)[0].to_csv(tmp_path / "cohort.csv", index=False)
    path = tmp_path / "glm.yaml"
    path.write_text(yaml.safe_dump(base_config()))
    assert fit_main([str(path), "--out", str(tmp_path / "main")]) == 0
    args = ["--set", "priors.beta.sigma=0.01", "--out", str(tmp_path / "alt")]
    assert fit_main([str(path), *args]) == 0
    capsys.readouterr()
    assert compare_main([str(tmp_path / "main"), str(tmp_path / "alt")]) == 0
    printed = capsys.readouterr().out
    assert "priors.beta: Normal(mu=0, sigma=2.5) -> Normal(mu=0, sigma=0.01)" in printed
    table = pd.read_csv(tmp_path / "comparisons" / "main-vs-alt" / "comparison.csv")
    assert table["item"].tolist() == ["e1", "e2"]
    assert set(table["quantity"]) == {"effect (beta)"}
    assert table[["estimate [main]", "estimate [alt]"]].notna().all().all()


def new_effects(rows, measure="beta"):
    """GLM effects as fit.py writes them now: estimate (the median), estimate_is, mean."""
    return [
        {"fit": "multi", "term": t, "measure": measure, "estimate": med, "estimate_is": "median"}
        | {"mean": mean, "median": med, "lower": lo, "upper": hi}
        for t, med, mean, lo, hi in rows
    ]


def test_an_old_run_is_compared_with_a_new_one_on_the_statistic_both_report(tmp_path):
    """An old GLM table's beta `estimate` is the mean, a new one's the median: compared on
    the mean, which both have, and said so."""
    old = fake_run(tmp_path / "old", config(model="glm"), effects=effects([("Pb", 0.20, 0.1, 0.3)]))
    new = fake_run(
        tmp_path / "new",
        config(model="glm"),
        effects=new_effects([("Pb", 0.15, 0.21, 0.1, 0.3)]),
    )
    result = cmp.compare([old, new])
    row = result.table.set_index(["quantity", "item"]).loc[("effect (beta)", "Pb")]
    assert row["statistic"] == "mean"
    assert row["estimate [old]"] == 0.20 and row["estimate [new]"] == 0.21  # not the median
    text = result.text()
    assert "effect (beta): compared on the posterior mean" in text
    assert "old mean, new median" in text
    # two new runs: their own point estimate (the median), without a note
    again = fake_run(
        tmp_path / "again",
        config(model="glm"),
        effects=new_effects([("Pb", 0.12, 0.2, 0.0, 0.3)]),
    )
    result = cmp.compare([new, again])
    row = result.table.set_index(["quantity", "item"]).loc[("effect (beta)", "Pb")]
    assert row["statistic"] == "median" and row["estimate [again]"] == 0.12
    assert "compared on the posterior" not in result.text()


def curve_rows(**columns):
    return [
        {"variable": "Pb", "z": z, "concentration": np.exp(z), "lower": -1.0, "upper": 1.0}
        | {name: value[k] for name, value in columns.items()}
        for k, z in enumerate(np.linspace(-1, 1, 3))
    ]


def test_old_bkmr_curves_in_est_are_compared_on_the_mean(tmp_path):
    pips = [{"variable": "Pb", "pip": 0.6}]
    old = fake_run(
        tmp_path / "old", config(model="bkmr"), pips=pips, univariate=curve_rows(est=[0, 1, 2])
    )
    new = fake_run(
        tmp_path / "new",
        config(model="bkmr"),
        pips=pips,
        univariate=curve_rows(
            estimate=[0.5, 1.5, 2.5], estimate_is=["median"] * 3, mean=[0.1, 1.1, 2.1]
        ),
    )
    result = cmp.compare([old, new])
    assert result.curves["estimate [new]"].tolist() == [0.1, 1.1, 2.1]
    assert set(result.curves["statistic"]) == {"mean"}
    assert "h curve: compared on the posterior mean" in result.text()
    # without a mean in the new run there is nothing alike: compared as they are, and said so
    bare = fake_run(
        tmp_path / "bare",
        config(model="bkmr"),
        pips=pips,
        univariate=curve_rows(estimate=[0.5, 1.5, 2.5], estimate_is=["median"] * 3),
    )
    result = cmp.compare([old, bare])
    assert result.curves["estimate [bare]"].tolist() == [0.5, 1.5, 2.5]
    assert "not like with like" in result.text()


def test_headline_quantities_are_chosen_by_model(tmp_path):
    psi = [{"parameter": "psi", "model": "conditional", "mean": 0.1, "median": 0.09}]
    psi[0] |= {"lower": 0.0, "upper": 0.2}
    qgcomp_weights = [
        {"exposure": "Pb", "weight": 0.7, "weight_mean": 0.6, "beta_mean": 0.05}
        | {"weight_lower": 0.2, "weight_upper": 0.9, "beta_lower": 0.0, "beta_upper": 0.1}
    ]  # no `side` column: still qgcomp's weights, by the model's name
    a = fake_run(tmp_path / "a", config(model="qgcomp"), psi=psi, weights=qgcomp_weights)
    b = fake_run(tmp_path / "b", config(model="qgcomp"), psi=psi, weights=qgcomp_weights)
    table = cmp.compare([a, b]).table
    assert list(dict.fromkeys(table["quantity"])) == [
        *("psi", "qgcomp weight", "qgcomp beta (per quantile)"),
    ]
    assert table.set_index("quantity").loc["qgcomp weight", "statistic"] == "plug-in"
    assert set(cmp.HEADLINES) == set(cmp.READERS) == {"bkmr", "bwqs", "glm", "qgcomp"}
    # a table the model does not report is not compared (a GLM run folder's stray weights)
    glm_a = fake_run(
        tmp_path / "glm_a",
        config(model="glm"),
        effects=effects([("Pb", 0.2, 0.1, 0.3)]),
        weights=weights([0.5, 0.3, 0.2]),
    )
    glm_b = fake_run(
        tmp_path / "glm_b", config(model="glm"), effects=effects([("Pb", 0.1, 0.0, 0.3)])
    )
    assert set(cmp.compare([glm_a, glm_b]).table["quantity"]) == {"effect (beta)"}
