import numpy as np
import pandas as pd
import pytest

from bayesmetal.exposures import (
    detection_frequency,
    quantile_scores,
    standardise,
    unit_from_label,
)


def test_unit_comes_from_the_label():
    assert unit_from_label("Blood lead (ug/dL)") == "ug/dL"
    assert unit_from_label("Blood mercury, total (ug/L)") == "ug/L"
    assert unit_from_label("no unit here") == ""


def test_detection_frequency_is_share_at_or_above_lod():
    flags = pd.Series([0, 0, 1, 0, np.nan])
    assert detection_frequency(flags) == pytest.approx(0.75)


def test_standardise_centres_and_scales():
    z, centre, scale = standardise(pd.DataFrame({"a": [1.0, 2.0, 3.0]}))
    assert z["a"].tolist() == pytest.approx([-1, 0, 1])
    assert (centre["a"], scale["a"]) == pytest.approx((2.0, 1.0))


def test_quartile_scores_split_the_sample_evenly():
    values = pd.Series(np.arange(1, 101, dtype=float))
    scores, edges = quantile_scores(values, 4)
    assert np.bincount(scores).tolist() == [25, 25, 25, 25]
    assert scores.iloc[24] == 0 and scores.iloc[25] == 1  # (a, b] intervals, as gWQS


def test_ties_at_the_lod_collapse_quantiles():
    values = pd.Series([0.05] * 60 + list(np.linspace(1, 2, 40)))
    scores, edges = quantile_scores(values, 4)
    # the minimum, 25th and 50th percentiles coincide at the imputed LOD value: as R's qgcomp
    # and gWQS, the cut points at the minimum go, and the LOD block shares score 0 with the
    # lower part of the measured values
    assert len(edges) == 1
    assert sorted(scores.unique()) == [0, 1]
    assert (scores[:60] == 0).all() and np.bincount(scores).tolist() == [75, 25]
