"""Each derived covariate at its boundaries (METHODS section 3)."""

import numpy as np
import pandas as pd
import pytest

from bayesmetal.config import load_config
from bayesmetal.derive import derive, met_minutes

from .conftest import CONFIGS


@pytest.fixture(scope="module")
def covariates():
    return load_config(CONFIGS / "cohorts" / "children_bmd.yaml").cohort.covariates


def _derive(spec, column, values):
    return derive(pd.DataFrame({column: values}), spec).astype(object).tolist()


def test_bmi_category_boundaries(covariates):
    got = _derive(covariates["bmi_category"], "BMXBMI", [24.99, 25.0, 29.99, 30.0, np.nan])
    assert got == ["<25", "25-30", "25-30", ">=30", np.nan]


def test_pir_boundaries_are_right_closed(covariates):
    got = _derive(covariates["pir"], "INDFMPIR", [1.3, 1.31, 3.5, 3.51])
    assert got == ["<=1.3", "1.3-3.5", "1.3-3.5", ">3.5"]


def test_cotinine_boundaries(covariates):
    got = _derive(covariates["cotinine"], "LBXCOT", [0.049, 0.05, 2.99, 3.0])
    assert got == ["<0.05", "0.05-2.99", "0.05-2.99", ">=3"]


def test_fasting_and_age_group_boundaries(covariates):
    assert _derive(covariates["fasting"], "PHAFSTHR", [7.9, 8]) == ["<8 h", ">=8 h"]
    assert _derive(covariates["age_group"], "RIDAGEYR", [11, 12]) == [
        "child (8-11)",
        "adolescent (12-19)",
    ]


def test_recodes_drop_refused_and_unknown_codes(covariates):
    assert _derive(covariates["hypertension"], "BPQ020", [1, 2, 7, 9]) == [
        "yes",
        "no",
        np.nan,
        np.nan,
    ]
    assert _derive(covariates["sex"], "RIAGENDR", [1, 2]) == ["male", "female"]
    race = _derive(covariates["race"], "RIDRETH3", [1, 2, 3, 4, 6, 7])
    assert race[4] == race[5] == "Other (incl. Non-Hispanic Asian)"


def _activity_frame(vig_days, vig_min, mod_days=np.nan, mod_min=np.nan, walk_days=0, walk_min=0):
    return pd.DataFrame(
        {
            "PAQ605": [1.0],
            "PAQ610": [vig_days],
            "PAD615": [vig_min],
            "PAQ650": [2.0],
            "PAQ655": [np.nan],
            "PAD660": [np.nan],
            "PAQ620": [1.0 if mod_days == mod_days else 2.0],
            "PAQ625": [mod_days],
            "PAD630": [mod_min],
            "PAQ665": [2.0],
            "PAQ670": [np.nan],
            "PAD675": [np.nan],
            "PAQ635": [1.0],
            "PAQ640": [walk_days],
            "PAD645": [walk_min],
        }
    )


def test_met_minutes_formula(covariates):
    spec = covariates["physical_activity"]
    frame = _activity_frame(
        vig_days=3, vig_min=20, mod_days=2, mod_min=30, walk_days=5, walk_min=10
    )
    assert met_minutes(frame, spec).iloc[0] == 8 * 60 + 4 * 60 + 4 * 50


@pytest.mark.parametrize(
    "weekly_vigorous_minutes, level",
    [
        (62, "low (<500)"),
        (62.5, "moderate (500-1000)"),
        (125, "moderate (500-1000)"),
        (125.5, "high (>1000)"),
    ],
)
def test_activity_levels_at_500_and_1000(covariates, weekly_vigorous_minutes, level):
    frame = _activity_frame(vig_days=1, vig_min=weekly_vigorous_minutes)
    assert derive(frame, covariates["physical_activity"]).iloc[0] == level


def test_activity_refused_is_missing_and_no_is_zero(covariates):
    spec = covariates["physical_activity"]
    assert np.isnan(met_minutes(_activity_frame(vig_days=99, vig_min=30), spec).iloc[0])
    frame = _activity_frame(vig_days=1, vig_min=10)
    frame["PAQ605"] = 2.0
    frame[["PAQ610", "PAD615"]] = np.nan
    assert met_minutes(frame, spec).iloc[0] == 0.0


def test_smoking_status():
    spec = load_config(CONFIGS / "cohorts" / "adults_op_2013.yaml").cohort.covariates["smoking"]
    frame = pd.DataFrame({"SMQ020": [2, 1, 1, 1, 7], "SMQ040": [np.nan, 3, 1, 2, np.nan]})
    assert derive(frame, spec).astype(object).tolist() == [
        "never",
        "former",
        "current",
        "current",
        np.nan,
    ]
