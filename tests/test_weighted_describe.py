"""The weighted (design-based) Table 1 and Table 2 against R's survey package on the embedded
real cohorts (fixtures written by scripts/svydescribe_reference.py and
scripts/r/svydescribe_reference.R: the whole NHANES design, subset() to the analysis sample),
and on synthetic designs: domain estimation (not subsetting) and the printed layout.

Same methods as R, so estimates and SEs agree to 1e-6 relative (quantiles and their Woodruff
intervals too: both use qrule 'math' and the CDF's SE); p-values to 1e-3 absolute as asked,
and in fact to 1e-6 relative."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmetal.cli import resolve_data_dir
from bayesmetal.cohort import AnalysisTable, ExposureInfo, load_cohort
from bayesmetal.config import load_config
from bayesmetal.errors import DataError
from bayesmetal.summaries.describe import PERCENTILES, level_label
from bayesmetal.summaries.weighted import (
    domain_design,
    table1_weighted,
    table2_weighted,
)
from bayesmetal.survey_design import survey_frame

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "svydescribe").glob("*.csv"))
RTOL = 1e-6
P_ATOL = 1e-3
needs_nhanes = pytest.mark.skipif(
    not (ROOT / "data" / "nhanes").is_dir(), reason="the embedded NHANES extract is absent"
)


@cache
def _cohort(config_name: str) -> AnalysisTable:
    config = load_config(ROOT / "configs" / config_name)
    return load_cohort(config.cohort, resolve_data_dir(config, None), config.cohort.survey)


@cache
def _case(path: Path):
    """The fixture, its cohort, group, Table 1 variables and the domain design."""
    numbers = {c: [""] for c in ("est", "se", "lci", "uci", "p_value")}
    reference = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=numbers)
    reference[list(numbers)] = reference[list(numbers)].astype(float)
    table = _cohort(reference["config"].iloc[0])
    group_by = reference["group_by"].iloc[0]
    variables = [v for v in [*table.covariates, *table.outcomes] if v != group_by]
    design = domain_design(table, variables, tuple(table.exposure_names), group_by)
    return reference, table, group_by, design


def _labelled(frame: pd.DataFrame, table: AnalysisTable, group_by: str) -> pd.DataFrame:
    """Group levels as R names them ('' overall)."""
    if "group" not in frame.columns:
        return frame.assign(group="")
    return frame.assign(group=[level_label(table, group_by, g) for g in frame["group"]])


def _ours(design, table: AnalysisTable, group_by: str, kind: str, variable: str):
    """Our estimates of one kind, overall and by group, keyed like the fixture's rows."""
    parts = []
    for by_group in (False, True):
        if kind == "population":
            part = design.population(by_group)
        elif kind == "mean":
            part = design.mean(variable, by_group)
        else:
            part = design.proportions(variable, by_group)
            part = part.assign(
                level=[level_label(table, variable, v) for v in part["level"]],
                est=100 * part["est"],
                se=100 * part["se"],
            )
        parts.append(_labelled(part, table, group_by))
    frame = pd.concat(parts, ignore_index=True)
    if "level" not in frame.columns:
        frame["level"] = ""
    return frame.set_index(["level", "group"])[["est", "se"]]


def _check(ours: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
    joined = expected.join(ours.add_suffix("_ours"), how="left")
    for column in columns:
        assert np.allclose(joined[f"{column}_ours"], joined[column], rtol=RTOL, atol=1e-9), joined


@needs_nhanes
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_means_percentages_and_population_match_r(path):
    reference, table, group_by, design = _case(path)
    rows = reference.loc[reference["kind"].isin(["population", "mean", "percent"])]
    for (kind, variable), expected in rows.groupby(["kind", "variable"]):
        ours = _ours(design, table, group_by, kind, variable)
        expected = expected.set_index(["level", "group"])
        _check(ours, expected[["est", "se"]], ["est", "se"])


@needs_nhanes
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_table1_p_values_match_r(path):
    reference, table, group_by, _ = _case(path)
    tests = reference.loc[reference["kind"] == "test"].set_index("variable")
    ours = table1_weighted(table, group_by, formatted=False)
    ours = ours.loc[ours["test"].fillna("") != ""].set_index("variable")
    assert list(ours.index) == list(tests.index)
    assert (ours["test"] == tests["test"]).all()
    assert np.allclose(ours["p_value"], tests["p_value"], rtol=0, atol=P_ATOL)
    assert np.allclose(ours["p_value"], tests["p_value"], rtol=RTOL, atol=1e-12)


def _rows(reference: pd.DataFrame, kind: str, variable: str) -> pd.DataFrame:
    return reference.loc[(reference["kind"] == kind) & (reference["variable"] == variable)]


@needs_nhanes
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_geometric_means_and_percentiles_match_r(path):
    reference, table, _, design = _case(path)
    ours = table2_weighted(table, formatted=False).set_index("exposure")
    for name in table.exposure_names:
        gm = _rows(reference, "geometric_mean", name)
        expected = gm.iloc[0][["est", "lci", "uci"]].to_numpy(float)
        got = ours.loc[name, ["geometric_mean", "geometric_mean_lci", "geometric_mean_uci"]]
        assert np.allclose(got.to_numpy(float), expected, rtol=RTOL), name
        assert np.isclose(design.geometric_mean(name)["log_se"], gm["se"].iloc[0], rtol=RTOL)
        q = _rows(reference, "quantile", name)
        q = q.set_index(q["level"].astype(int))
        for pct in PERCENTILES:
            got = ours.loc[name, [f"p{pct}", f"p{pct}_lci", f"p{pct}_uci"]].to_numpy(float)
            expected = q.loc[pct, ["est", "lci", "uci"]].to_numpy(float)
            assert np.allclose(got, expected, rtol=RTOL), name
        se = design.quantiles(name, PERCENTILES)["se"].to_numpy()
        assert np.allclose(se, q.loc[list(PERCENTILES), "se"], rtol=RTOL), name


def _synthetic(seed: int = 2) -> AnalysisTable:
    """A stratified, clustered design (4 strata x 3 PSUs x 40 persons); the domain is in only
    two PSUs of each stratum, so that subsetting the design changes the variance. Group `g`
    shifts `x` by 3 SDs; `sex` does not depend on it."""
    rng = np.random.default_rng(seed)
    n = 4 * 3 * 40
    stratum = np.repeat(np.arange(4), 120)
    psu = np.repeat(np.arange(12), 40) % 3
    raw = pd.DataFrame({"SEQN": np.arange(n), "SDMVSTRA": stratum, "SDMVPSU": psu})
    weight = pd.Series(rng.uniform(500, 3000, n))
    in_domain = pd.Series((psu < 2) & (rng.uniform(size=n) < 0.7))
    design = survey_frame(raw, in_domain, weight, "W", "SDMVSTRA", "SDMVPSU", nest=True)
    domain = raw.loc[in_domain].reset_index(drop=True)
    g = rng.integers(0, 2, len(domain))
    psu_effect = rng.normal(0, 1, 12)[domain["SDMVSTRA"] * 3 + domain["SDMVPSU"]]
    frame = pd.DataFrame(
        {
            "SEQN": domain["SEQN"],
            "g": pd.Categorical(np.where(g, "b", "a")),
            "sex": pd.Categorical(rng.choice(["female", "male"], len(domain))),
            "x": 10 + 3 * g + psu_effect + rng.normal(0, 1, len(domain)),
            "Pb": np.exp(rng.normal(0, 0.5, len(domain))),
        }
    )
    exposure = ExposureInfo("Pb", "LBXBPB", "Blood lead (ug/dL)", "ug/dL")
    return AnalysisTable(
        frame, pd.DataFrame(), (exposure,), ("sex", "g"), {"x": "gaussian"}, {}, {}, {}, design
    )


def _linearised_se(table: AnalysisTable) -> float:
    """SE of the domain mean of x by hand: the with-replacement Taylor variance of the
    linearised total, persons outside the domain adding zeros to their PSU's total."""
    survey = table.survey.weights_for(table.frame["SEQN"].to_numpy())
    x = table.frame["x"].to_numpy()
    w = survey.weights
    scores = w * (x - np.average(x, weights=w)) / w.sum()
    return float(np.sqrt(survey.total_covariance(scores)[0, 0]))


def test_domain_estimation_keeps_the_whole_design():
    table = _synthetic()
    se = domain_design(table, ["x"]).mean("x")["se"].iloc[0]
    assert np.isclose(se, _linearised_se(table), rtol=1e-9)
    whole = table.survey.frame
    subset = AnalysisTable(
        table.frame, table.flow, table.exposures, table.covariates, table.outcomes, {}, {}, {},
        type(table.survey)(whole.loc[whole["in_domain"]], "W", "SDMVSTRA", "SDMVPSU"),
    )  # fmt: skip
    se_subset = domain_design(subset, ["x"]).mean("x")["se"].iloc[0]
    assert abs(se_subset / se - 1) > 0.2  # subsetting would have given another SE


MEAN_SE = re.compile(r"-?\d+\.\d+ \(\d+\.\d+\)")
ESTIMATE_CI = re.compile(r"\d+\.?\d* \(\d+\.?\d*, \d+\.?\d*\)")


def test_table1_layout_puts_unweighted_n_beside_weighted_estimates():
    table = _synthetic()
    result = table1_weighted(table, group_by="g")
    assert list(result.columns) == [
        "variable", "level", "statistic", "n", "overall",
        "n, g = a", "g = a", "n, g = b", "g = b", "p_value", "test",
    ]  # fmt: skip
    header = result.iloc[0]
    assert header["n"] == len(table.frame)
    assert header["n, g = a"] + header["n, g = b"] == len(table.frame)
    x = result.set_index("variable").loc["x"]
    assert x["statistic"] == "mean (SE)" and MEAN_SE.fullmatch(x["overall"])
    assert x["p_value"] == "< 0.001" and x["test"] == "design-based t-test"
    sex = result.loc[result["variable"] == "sex"]
    assert list(sex["level"]) == ["female", "male"] and (sex["statistic"] == "% (SE)").all()
    assert sex["n"].sum() == len(table.frame)
    assert sex["test"].iloc[0] == "Rao-Scott F" and sex["p_value"].iloc[1] == ""
    shares = sex["overall"].str.extract(r"^([\d.]+) ")[0].astype(float)
    assert np.isclose(shares.sum(), 100, atol=0.11)


def test_table2_layout_gives_estimates_with_intervals():
    table = _synthetic()
    result = table2_weighted(table)
    assert list(result.columns) == [
        "exposure", "variable", "label", "unit", "n", "geometric_mean",
        *(f"p{pct}" for pct in PERCENTILES),
    ]  # fmt: skip
    row = result.iloc[0]
    assert row["n"] == len(table.frame)
    assert all(ESTIMATE_CI.fullmatch(row[c]) for c in result.columns[5:])
    numbers = table2_weighted(table, formatted=False).iloc[0]
    assert numbers["geometric_mean_lci"] < numbers["geometric_mean"] < numbers["geometric_mean_uci"]


def test_a_person_without_a_positive_weight_is_refused_not_dropped():
    """A person of the analysis sample missing from the design (a missing weight) would be
    counted in n but left out of every estimate: refused by name."""
    table = _synthetic()
    whole = table.survey.frame
    first = table.frame["SEQN"].iloc[0]
    design = type(table.survey)(whole.loc[whole["SEQN"] != first], "W", "SDMVSTRA", "SDMVPSU")
    broken = AnalysisTable(
        table.frame, table.flow, table.exposures, table.covariates, table.outcomes, {}, {}, {},
        design,
    )  # fmt: skip
    with pytest.raises(DataError, match=f"no positive survey weight W .e.g. SEQN {first}"):
        table1_weighted(broken)
