"""T-scores, osteoporosis thresholds and self-report (METHODS section 4)."""

import numpy as np
import pandas as pd
import pytest

from bayesmetal.config import load_config
from bayesmetal.outcomes import compute_outcomes

from .conftest import CONFIGS


@pytest.fixture(scope="module")
def femur_outcomes():
    return load_config(CONFIGS / "cohorts" / "midage_op.yaml").cohort.outcomes


def test_tscore_uses_reference_by_sex(femur_outcomes):
    raw = pd.DataFrame(
        {"DXXNKBMD": [0.858, 0.738, 0.934], "DXXOFBMD": [0.942] * 3, "RIAGENDR": [2, 2, 1]}
    )
    out = compute_outcomes(raw, femur_outcomes)
    assert out["femoral_neck_t"].tolist() == pytest.approx([0.0, -1.0, 0.0])
    assert out.loc[2, "total_femur_t"] == pytest.approx((0.942 - 1.041) / 0.144)


def test_osteoporosis_at_minus_2_5_exactly_and_any_site(femur_outcomes):
    ref_fn, ref_tf = (0.858, 0.120), (0.942, 0.122)

    def bmd(t, ref):
        return ref[0] + t * ref[1]

    raw = pd.DataFrame(
        {
            "RIAGENDR": [2, 2, 2, 2, 2],
            "DXXNKBMD": [bmd(-2.5, ref_fn), bmd(-2.49, ref_fn), bmd(0, ref_fn), np.nan, np.nan],
            "DXXOFBMD": [
                bmd(0, ref_tf),
                bmd(0, ref_tf),
                bmd(-3, ref_tf),
                bmd(-1.5, ref_tf),
                np.nan,
            ],
        }
    )
    out = compute_outcomes(raw, femur_outcomes)
    assert out["osteoporosis"].tolist()[:4] == [1.0, 0.0, 1.0, 0.0]
    assert np.isnan(out["osteoporosis"].iloc[4])  # no site measured
    assert out["bone_status"].astype(object).tolist()[:4] == [
        "osteoporosis",
        "osteopenia",
        "osteoporosis",
        "osteopenia",
    ]


def test_self_report_keeps_dont_know_missing():
    spec = load_config(CONFIGS / "cohorts" / "adults_op_2013.yaml").cohort.outcomes
    out = compute_outcomes(pd.DataFrame({"OSQ060": [1, 2, 9, 7]}), spec)
    assert out["osteoporosis"].tolist()[:2] == [1.0, 0.0]
    assert out["osteoporosis"].iloc[2:].isna().all()
