"""Descriptive tables and the describe command, end to end on the embedded real data."""

import json
import re
from dataclasses import replace

import numpy as np
import openpyxl
import pandas as pd
import pytest
from scipy import stats

from bayesmetal.cli import describe_main
from bayesmetal.cohort import load_cohort
from bayesmetal.config import load_config
from bayesmetal.summaries.describe import (
    correlations,
    decimals_for,
    format_p,
    table1,
    table2,
)

from .conftest import CONFIGS, EMBEDDED_NHANES

CHILDREN = CONFIGS / "cohorts" / "children_bmd_2017.yaml"


@pytest.fixture(scope="module")
def children():
    return load_cohort(load_config(CHILDREN).cohort, EMBEDDED_NHANES)


def test_table1_tests_match_scipy(children):
    t1 = table1(children, "age_group", formatted=False).set_index(["variable", "level"])
    frame = children.frame
    kids = frame["age_group"] == "child (8-11)"
    t = stats.ttest_ind(frame.loc[kids, "lumbar_bmd"], frame.loc[~kids, "lumbar_bmd"])
    assert t1.loc[("lumbar_bmd", ""), "p_value"] == pytest.approx(t.pvalue)
    chi = stats.chi2_contingency(pd.crosstab(frame["race"], frame["age_group"]))
    assert t1.loc[("race", "Non-Hispanic White"), "p_value"] == pytest.approx(chi.pvalue)
    assert t1.loc[("n", ""), "overall"] == str(len(frame))


def test_table2_units_detection_and_percentiles(children):
    t2 = table2(children, formatted=False).set_index("exposure")
    assert t2.loc["Pb", "unit"] == "ug/dL" and t2.loc["Cd", "unit"] == "ug/L"
    cd = children.frame["Cd"]
    assert t2.loc["Cd", "detection_frequency_pct"] == pytest.approx(
        100 * (children.frame["Cd_below_lod"] == 0).mean()
    )
    assert t2.loc["Cd", "geometric_mean"] == pytest.approx(np.exp(np.log(cd).mean()))
    assert t2.loc["Cd", "p75"] == pytest.approx(np.percentile(cd, 75))
    assert 50 < t2.loc["Cd", "detection_frequency_pct"] < 80  # many children below the LOD


def test_correlations_are_symmetric_on_logs(children):
    corr = correlations(children)
    assert np.allclose(corr, corr.T) and np.allclose(np.diag(corr), 1)
    expected = np.corrcoef(np.log(children.frame["Pb"]), np.log(children.frame["Cd"]))[0, 1]
    assert corr.loc["Pb", "Cd"] == pytest.approx(expected)


def test_describe_command_writes_every_table(tmp_path):
    out = tmp_path / "describe"
    assert describe_main([str(CHILDREN), "--out", str(out)]) == 0
    for name in (
        "flow.csv",
        "table1.csv",
        "table2.csv",
        "correlations.csv",
        "correlations.png",
        "provenance.json",
        "tables.xlsx",
        "table1_weighted.csv",  # the cohort declares NHANES's survey design
        "table2_weighted.csv",
    ):
        assert (out / name).stat().st_size > 0
    provenance = json.loads((out / "provenance.json").read_text())
    assert "design df 15" in provenance["survey_design"]
    assert describe_main([str(CHILDREN), "--out", str(out)]) == 2  # never overwrites silently


def test_failed_describe_leaves_no_folder(tmp_path):
    out = tmp_path / "describe"
    code = describe_main([str(CHILDREN), "--out", str(out), "--data-dir", str(tmp_path / "none")])
    assert code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0, "< 0.001"),
        (0.000999, "< 0.001"),
        (0.001, "0.001"),
        (0.0496, "0.050"),
        (0.5414, "0.541"),
    ]
    + [(1.0, "1.000"), (float("nan"), "")],
)
def test_p_values_are_formatted(p, text):
    assert format_p(p) == text


def test_table1_is_ready_to_paste(children):
    t1 = table1(children, "age_group")
    assert list(t1.columns[4:6]) == ["age_group = child (8-11)", "age_group = adolescent (12-19)"]
    rows = t1.set_index(["variable", "level"])
    assert rows.loc[("sex", "male"), "p_value"] == "0.541"  # was 0.5413897803677781
    assert rows.loc[("age", ""), "p_value"] == "< 0.001"  # was 0.0
    assert rows.loc[("sex", "female"), "p_value"] == ""  # one p-value a variable
    age = children.frame["age"]
    assert rows.loc[("age", ""), "overall"] == f"{age.mean():.1f} ({age.std():.1f})"  # SD 3.5
    bmd = children.frame["lumbar_bmd"]
    assert rows.loc[("lumbar_bmd", ""), "overall"] == f"{bmd.mean():.2f} ({bmd.std():.2f})"
    assert rows.loc[("race", "Mexican American"), "overall"].endswith("%)")
    for value in t1.drop(columns=["variable", "level", "statistic", "test"]).stack():
        for number in re.findall(r"\d+\.\d+", value):  # no long floats anywhere
            assert len(number.split(".")[1]) <= 4, value


def test_binary_outcome_levels_are_named(children):
    """A bernoulli outcome's 0/1 are 'no'/'yes', as a group and as a row."""
    frame = children.frame.assign(low_bmd=(children.frame["lumbar_bmd"] < 0.8).astype(float))
    binary = replace(children, frame=frame, outcomes={**children.outcomes, "low_bmd": "bernoulli"})
    by_group = table1(binary, "low_bmd")
    assert {"low_bmd = no", "low_bmd = yes"} <= set(by_group.columns)
    assert not any("=0.0" in c or "1.0" in c for c in by_group.columns)
    rows = table1(binary, "age_group").set_index(["variable", "level"])
    assert rows.loc[("low_bmd", "yes"), "overall"].startswith(str(int(frame["low_bmd"].sum())))
    assert ("low_bmd", "no") in rows.index


def test_table2_rounds_each_exposure_to_its_scale(children):
    t2 = table2(children).set_index("exposure")
    cd = children.frame["Cd"]
    assert (
        t2.loc["Cd", "detection_frequency_pct"]
        == f"{100 * (children.frame['Cd_below_lod'] == 0).mean():.1f}"
    )
    decimals = decimals_for(float(cd.median()), significant=3)
    assert t2.loc["Cd", "p75"] == f"{np.percentile(cd, 75):.{decimals}f}"
    se = t2.loc["Se", ["geometric_mean", "mean", "p5", "p50", "p95"]]
    assert all("." not in v for v in se)  # Se ~ 190 ug/L: whole numbers
    assert decimals_for(0.36, significant=3) == 3 and decimals_for(195, significant=3) == 0
    assert decimals_for(9.23) == 1 and decimals_for(0.153) == 2 and decimals_for(3120) == 0


def test_workbook_has_a_sheet_a_table_and_numbers_as_numbers(tmp_path):
    out = tmp_path / "describe"
    assert describe_main([str(CHILDREN), "--out", str(out)]) == 0
    book = openpyxl.load_workbook(out / "tables.xlsx")
    assert book.sheetnames == [
        "flow",
        "table1",
        "table2",
        "correlations",
        "table1_weighted",
        "table2_weighted",
    ]
    weighted = pd.read_csv(out / "table1_weighted.csv", keep_default_na=False)
    assert book["table1_weighted"].max_row == len(weighted) + 1
    assert weighted.loc[0, "statistic"] == "n, weighted N"
    t1 = pd.read_csv(out / "table1.csv", keep_default_na=False)
    sheet = book["table1"]
    assert [c.value for c in sheet[1]] == list(t1.columns)
    assert sheet.max_row == len(t1) + 1
    t2 = book["table2"]
    header = [c.value for c in t2[1]]
    cd = next(r for r in t2.iter_rows(min_row=2) if r[0].value == "Cd")
    p50 = cd[header.index("p50")]
    assert isinstance(p50.value, float) and p50.number_format == "0.000"
    flow = pd.read_csv(out / "flow.csv")
    assert flow["step"].iloc[3] == "no Pb result (outside its lab subsample, or not measured)"
    corr = pd.read_csv(out / "correlations.csv", index_col=0, dtype=str)
    assert corr.loc["Pb", "Pb"] == "1.00"
