"""Descriptive tables and the describe command, end to end on the embedded real data."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesmetal.cli import describe_main
from bayesmetal.cohort import load_cohort
from bayesmetal.config import load_config
from bayesmetal.summaries.describe import correlations, table1, table2

from .conftest import CONFIGS, EMBEDDED_NHANES

CHILDREN = CONFIGS / "cohorts" / "children_bmd_2017.yaml"


@pytest.fixture(scope="module")
def children():
    return load_cohort(load_config(CHILDREN).cohort, EMBEDDED_NHANES)


def test_table1_tests_match_scipy(children):
    t1 = table1(children, "age_group").set_index(["variable", "level"])
    frame = children.frame
    kids = frame["age_group"] == "child (8-11)"
    t = stats.ttest_ind(frame.loc[kids, "lumbar_bmd"], frame.loc[~kids, "lumbar_bmd"])
    assert t1.loc[("lumbar_bmd", ""), "p_value"] == pytest.approx(t.pvalue)
    chi = stats.chi2_contingency(pd.crosstab(frame["race"], frame["age_group"]))
    assert t1.loc[("race", "Non-Hispanic White"), "p_value"] == pytest.approx(chi.pvalue)
    assert t1.loc[("n", ""), "overall"] == str(len(frame))


def test_table2_units_detection_and_percentiles(children):
    t2 = table2(children).set_index("exposure")
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
    ):
        assert (out / name).stat().st_size > 0
    assert describe_main([str(CHILDREN), "--out", str(out)]) == 2  # never overwrites silently


def test_failed_describe_leaves_no_folder(tmp_path):
    out = tmp_path / "describe"
    code = describe_main([str(CHILDREN), "--out", str(out), "--data-dir", str(tmp_path / "none")])
    assert code == 2
    assert list(tmp_path.iterdir()) == []
