"""Cohorts on real, embedded and synthetic data; the flow table accounts for everyone."""

import pandas as pd
import pytest

from bayesmetal.cohort import load_cohort
from bayesmetal.config import load_config, load_mapping, parse_config
from bayesmetal.errors import DataError

from .conftest import CONFIGS, EMBEDDED_NHANES


def _check_flow(table):
    flow = table.flow
    assert (flow["n_before"] - flow["excluded"] == flow["n_after"]).all()
    assert (flow["n_before"].iloc[1:].to_numpy() == flow["n_after"].iloc[:-1].to_numpy()).all()
    assert flow["n_after"].iloc[-1] == len(table.frame)
    assert flow["n_before"].iloc[0] - flow["excluded"].sum() == len(table.frame)


def _cohort(name):
    return load_config(CONFIGS / "cohorts" / f"{name}.yaml").cohort


def test_children_bmd_2017_flow_on_embedded_data():
    table = load_cohort(_cohort("children_bmd_2017"), EMBEDDED_NHANES)
    _check_flow(table)
    steps = table.flow.set_index("step")["n_after"]
    assert steps["aged 8-19 years"] == 1976
    assert steps["examined at the MEC"] == 1867
    assert len(table.frame) == 1226
    assert table.weights == {"2017-2018": "WTMEC2YR"}
    assert table.frame["age"].between(8, 19).all()
    assert table.frame[["lumbar_bmd", "total_bmd", "Pb", "Cd"]].notna().all().all()
    assert (table.frame["pir"] == "unknown").sum() == 127  # kept as a level, counted in flow
    assert table.frame[["SDMVPSU", "SDMVSTRA"]].notna().all().all()  # survey design carried


def test_adults_op_2013_flow_uses_subsample_weight():
    table = load_cohort(_cohort("adults_op_2013"), EMBEDDED_NHANES)
    _check_flow(table)
    assert len(table.frame) == 1277
    assert table.weights == {"2013-2014": "WTSH2YR"}
    assert (table.frame["weight"] > 0).all()
    assert table.outcomes == {"osteoporosis": "bernoulli"}
    assert set(table.frame["osteoporosis"].unique()) == {0.0, 1.0}


def test_embedded_extract_gives_the_real_files_tables(shared_nhanes):
    for name in ("children_bmd_2017", "adults_op_2013"):
        real = load_cohort(_cohort(name), shared_nhanes)
        embedded = load_cohort(_cohort(name), EMBEDDED_NHANES)
        pd.testing.assert_frame_equal(real.frame, embedded.frame)
        pd.testing.assert_frame_equal(real.flow, embedded.flow)


@pytest.mark.parametrize("name", ["children_bmd", "postmeno_op", "midage_op"])
def test_published_designs_run_on_synthetic_files(name, synthetic_nhanes):
    spec = _cohort(name)
    table = load_cohort(spec, synthetic_nhanes)
    _check_flow(table)
    assert len(table.frame) > 20
    n_cycles = len(spec.cycles)
    factors = (table.frame["weight_pooled"] / table.frame["weight"]).groupby(table.frame.cycle)
    if n_cycles == 3 or "2017-2020" not in spec.cycles:
        assert factors.mean().tolist() == pytest.approx([1 / n_cycles] * n_cycles)
    else:
        assert factors.mean().tolist() == pytest.approx([2 / 5.2, 3.2 / 5.2])


def test_postmenopausal_cohort_keeps_only_women(synthetic_nhanes):
    table = load_cohort(_cohort("postmeno_op"), synthetic_nhanes)
    assert (table.frame["sex"] == "female").all()
    assert table.flow.set_index("step").loc["women", "excluded"] > 0


def test_empty_cohort_is_an_error_showing_the_flow(synthetic_nhanes):
    mapping = load_mapping(CONFIGS / "cohorts" / "midage_op.yaml")
    mapping["cohort"]["include"][0]["between"] = [200, 300]
    spec = parse_config(mapping, "test.yaml").cohort
    with pytest.raises(DataError, match="empty after the flow steps"):
        load_cohort(spec, synthetic_nhanes)
