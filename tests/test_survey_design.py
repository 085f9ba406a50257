"""The survey design: the full design with the analysis sample as a domain, the variance of a
total, and the survey: switch in configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmetal.cohort_schema import SurveySpec
from bayesmetal.config import parse_config
from bayesmetal.design import make_design
from bayesmetal.errors import ConfigError, DataError
from bayesmetal.survey_design import SurveyWeights, survey_frame
from tests.toydata import base_config


def _raw(n_per_psu: int = 4) -> pd.DataFrame:
    """3 strata x 2 PSUs (numbered 1, 2 in each stratum, as NHANES does)."""
    rows = [
        {"SEQN": 100 * h + 10 * p + k, "SDMVSTRA": h, "SDMVPSU": p}
        for h in (1, 2, 3)
        for p in (1, 2)
        for k in range(n_per_psu)
    ]
    return pd.DataFrame(rows)


def _brute_force_covariance(values, stratum, psu, psu_stratum):
    """sum_h n_h/(n_h-1) sum_j (z_hj - mean_h z)(...)' written with loops."""
    result = np.zeros((values.shape[1], values.shape[1]))
    for h in np.unique(psu_stratum):
        psus = np.flatnonzero(psu_stratum == h)
        totals = np.array([values[psu == j].sum(axis=0) for j in psus])
        centred = totals - totals.mean(axis=0)
        result += len(psus) / (len(psus) - 1) * centred.T @ centred
    return result


def test_total_covariance_is_the_with_replacement_estimator():
    rng = np.random.default_rng(1)
    psu_stratum = np.array([0, 0, 1, 1, 1, 2, 2])  # a stratum with 3 PSUs too
    psu = rng.integers(0, 6, size=40)  # PSU 6 has nobody in the domain: total 0, still counted
    values = rng.normal(size=(40, 3))
    survey = SurveyWeights(np.ones(40), psu_stratum[psu], psu, psu_stratum)
    expected = _brute_force_covariance(values, psu_stratum[psu], psu, psu_stratum)
    assert np.allclose(survey.total_covariance(values), expected)


def test_a_domain_keeps_the_psus_that_a_subset_would_drop():
    """Variance of a domain total: PSUs without domain members still count (their total is
    0); dropping them (a subsetted design) gives another, wrong, variance."""
    psu_stratum = np.array([0, 0, 1, 1])
    psu = np.array([0, 0, 1, 2, 2])  # nobody of the domain in PSU 3 of stratum 1
    values = np.array([[1.0], [2.0], [3.0], [1.0], [1.0]])
    domain = SurveyWeights(np.ones(5), psu_stratum[psu], psu, psu_stratum)
    subset = SurveyWeights(np.ones(5), psu_stratum[psu], psu, psu_stratum[:3])
    # stratum 0: totals 3, 3 -> 0; stratum 1: totals 2, 0 -> 2 * (1 + 1) = 4
    assert domain.total_covariance(values)[0, 0] == pytest.approx(4.0)
    with pytest.raises(DataError, match="single PSU"):
        subset.total_covariance(values)


def test_survey_frame_nests_psus_in_strata_and_marks_the_domain():
    raw = _raw()
    weight = pd.Series(np.linspace(1, 2, len(raw)))
    keep = raw["SEQN"] % 2 == 0
    frame = survey_frame(raw, keep, weight, "W", "SDMVSTRA", "SDMVPSU", nest=True)
    assert (frame.n_strata, frame.n_psus, frame.df) == (3, 6, 3)
    assert frame.frame["in_domain"].sum() == keep.sum()
    ids = raw.loc[keep, "SEQN"].to_numpy()[::-1]  # any order of the analysis rows
    weights = frame.weights_for(ids)
    assert weights.weights.sum() == pytest.approx(len(ids))
    assert weights.df == 3 and len(weights.psu_stratum) == 6
    raw_weight = weight[keep].to_numpy()[::-1]
    assert np.allclose(weights.weights, raw_weight * len(ids) / raw_weight.sum())


def test_survey_frame_refuses_what_it_cannot_use():
    raw = _raw()
    weight = pd.Series(1.0, index=raw.index)
    keep = pd.Series(True, index=raw.index)
    with pytest.raises(DataError, match="repeat across strata"):
        survey_frame(raw, keep, weight, "W", "SDMVSTRA", "SDMVPSU", nest=False)
    with pytest.raises(DataError, match="no column 'PSU'"):
        survey_frame(raw, keep, weight, "W", "SDMVSTRA", "PSU", nest=True)
    zero = weight.copy()
    zero[0] = 0.0
    with pytest.raises(DataError, match="1 persons of the analysis sample have weight 0"):
        survey_frame(raw, keep, zero, "W", "SDMVSTRA", "SDMVPSU", nest=True)
    frame = survey_frame(raw, keep & (raw.index > 0), weight, "W", "SDMVSTRA", "SDMVPSU", True)
    with pytest.raises(DataError, match="no positive survey weight"):
        frame.weights_for(np.array([raw["SEQN"][0], 999999]))


def test_config_survey_switch():
    config = base_config(weight="w")
    assert parse_config(config, "x.yaml").survey_design() is None
    assert parse_config({**config, "survey": True}, "x.yaml").survey_design() == SurveySpec()
    own = {"weight": "W", "strata": "S", "psu": "P", "nest": False}
    assert parse_config({**config, "survey": own}, "x.yaml").survey_design() == SurveySpec(**own)
    with pytest.raises(ConfigError, match="survey"):
        parse_config({**config, "survey": {"wieght": "W"}}, "x.yaml")
    with pytest.raises(ConfigError, match="needs table.weight"):
        parse_config({**base_config(), "survey": True}, "x.yaml")


def test_bkmr_takes_survey_weights_but_refuses_probit_and_random_intercepts_at_load():
    config = base_config(weight="w") | {"model": {"name": "bkmr", "knots": 20}, "survey": True}
    assert parse_config(config, "x.yaml").survey_design() == SurveySpec()
    exact = config | {"model": {"name": "bkmr"}}
    with pytest.raises(ConfigError, match="survey needs model.knots"):
        parse_config(exact, "x.yaml")
    binary = config | {"table": config["table"] | {"family": "bernoulli"}}
    with pytest.raises(ConfigError, match="x.yaml: survey: the probit BKMR"):
        parse_config(binary, "x.yaml")
    grouped = config | {"model": {"name": "bkmr", "knots": 20, "random_intercept": "sex"}}
    with pytest.raises(ConfigError, match="survey with model.random_intercept"):
        parse_config(grouped, "x.yaml")


def test_design_warns_when_design_df_is_below_the_coefficients():
    rng = np.random.default_rng(2)
    n = 60
    frame = pd.DataFrame(
        {
            "SEQN": range(n),
            "y": rng.normal(size=n),
            "Pb": rng.lognormal(size=n),
            "Cd": rng.lognormal(size=n),
            "age": rng.normal(size=n),
        }
    )
    psu = np.arange(n) % 4
    survey = SurveyWeights(np.ones(n), psu // 2, psu, np.array([0, 0, 1, 1]), label="toy")
    design = make_design(frame, "y", "gaussian", ["Pb", "Cd"], ["age"], survey=survey)
    assert any("toy" in note for note in design.notes)
    assert any(
        "2 design degrees of freedom" in note and "4 regression" in note for note in design.notes
    )
    assert design.likelihood_weights is survey.weights
    assert design.rows(np.arange(10)).survey.weights.shape == (10,)


def _survey_table_config(folder) -> str:
    """A CSV with a weight, 6 strata of 2 PSUs, and a GLM config using that design."""
    import yaml

    from tests.toydata import predictors

    rng = np.random.default_rng(11)
    frame = predictors(rng, 120)
    frame["y"] = np.log(frame["e1"]) + rng.normal(size=120)
    frame["w"] = rng.uniform(1, 3, 120)
    frame["stratum"] = np.arange(120) % 6
    frame["cluster"] = np.arange(120) % 12 // 6  # 1, 2 in every stratum: nested
    frame.to_csv(folder / "data.csv", index=False)
    config = base_config(str(folder / "data.csv"), weight="w")
    config["survey"] = {"strata": "stratum", "psu": "cluster"}
    (folder / "run.yaml").write_text(yaml.safe_dump(config))
    return str(folder / "run.yaml")


def test_survey_run_on_a_table_is_adjusted_saved_and_summarised_again(
    tmp_path, monkeypatch, capsys
):
    """fit.py with survey: on a user's table (fake sampler: plumbing, not statistics): the
    posterior is the adjusted one, the pseudo-posterior is kept, the design is in the notes,
    and --summarise rebuilds the design from the run folder alone."""
    from bayesmetal.arviz_api import load_idata
    from bayesmetal.cli import fit_main
    from tests.fakesampler import use_fake_sampler

    use_fake_sampler(monkeypatch)
    out = tmp_path / "run"
    assert fit_main([_survey_table_config(tmp_path), "--out", str(out)]) == 0
    idata = load_idata(str(out / "idata.nc"))
    assert "pseudo_posterior" in idata.groups()
    assert not np.allclose(idata.posterior["beta"], idata.pseudo_posterior["beta"])
    said = "strata stratum (6), PSUs cluster (12), design df 6"
    assert said in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert said in page and "weighted, design-adjusted posterior" in page
    assert "t intervals on 6 design df" in page
    assert idata.posterior.attrs["survey_intervals"] == "t on 6 design df"
    assert fit_main(["--summarise", str(out)]) == 0
    assert "t intervals on 6 design df" in (out / "report.html").read_text()


def test_normal_intervals_are_a_config_choice_kept_by_the_run(tmp_path, monkeypatch):
    """survey.intervals: normal: no t tails, said in the report and kept by --summarise."""
    import yaml

    from bayesmetal.arviz_api import load_idata
    from bayesmetal.cli import fit_main
    from tests.fakesampler import use_fake_sampler

    use_fake_sampler(monkeypatch)
    path = Path(_survey_table_config(tmp_path))
    config = yaml.safe_load(path.read_text())
    config["survey"]["intervals"] = "normal"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    assert fit_main([str(path), "--out", str(out)]) == 0
    assert load_idata(str(out / "idata.nc")).posterior.attrs["survey_intervals"] == "normal"
    assert fit_main(["--summarise", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "(Williams-Savitsky sandwich, Taylor linearisation; normal intervals)" in page


def test_a_failed_adjustment_keeps_the_draws(tmp_path, monkeypatch):
    """The adjustment fails (a singular Hessian): the pseudo-posterior is saved, the summaries
    fail with the reason (exit 3), and --summarise tries the adjustment again."""
    from bayesmetal import survey_adjust
    from bayesmetal.arviz_api import load_idata
    from bayesmetal.cli import fit_main
    from tests.fakesampler import use_fake_sampler

    use_fake_sampler(monkeypatch)
    original = survey_adjust.adjust

    def singular(*args):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(survey_adjust, "adjust", singular)
    out = tmp_path / "run"
    assert fit_main([_survey_table_config(tmp_path), "--out", str(out)]) == 3
    assert "Singular matrix" in (out / "summaries_failed.txt").read_text()
    assert "pseudo_posterior" not in load_idata(str(out / "idata.nc")).groups()
    monkeypatch.setattr(survey_adjust, "adjust", original)
    assert fit_main(["--summarise", str(out)]) == 0
