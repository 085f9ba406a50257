"""Subgroup analyses: a GLM with a slope per level of an effect modifier (`model.by`), its
interaction test against statsmodels' Wald test of the same model, the modifier's coding and
refusals, and a study's subgroup fits, table and forest plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from bayesmetal import study_subgroups, workflow
from bayesmetal.config import parse_config
from bayesmetal.design import TREND, make_design, split_stratum
from bayesmetal.errors import ConfigError
from bayesmetal.models import glm
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.runs import RUN_MARKER
from bayesmetal.sampling import sample
from bayesmetal.study import load_study
from bayesmetal.summaries.glm import interaction

from .test_glm import beta_idata
from .test_study import _study_file
from .toydata import base_config

FAST = SamplerSpec(chains=2, tune=500, draws=1000, seed=3, progressbar=False)
SLOPES = {"a": 0.4, "b": 0.1, "c": 0.1}  # e1's slope by group: a differs, b and c alike


def _modified(n: int, seed: int, slopes: dict[str, float]) -> pd.DataFrame:
    """e1's effect on y depends on the group (a, b, c); age is a covariate."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"e1": np.exp(rng.normal(size=n)), "age": rng.normal(size=n)})
    frame["group"] = rng.choice(list(slopes), n)
    slope = frame["group"].map(slopes).to_numpy()
    shift = frame["group"].map({"a": 0.0, "b": 0.3, "c": -0.2}).to_numpy()
    frame["y"] = slope * np.log(frame["e1"]) + shift + 0.2 * frame["age"] + rng.normal(size=n)
    return frame


def test_by_group_gives_a_slope_per_level_named_by_its_stratum():
    frame = _modified(60, seed=1, slopes=SLOPES)
    design = make_design(frame, "y", "gaussian", ["e1"], ["age"], group="group", id_column="x")
    terms = design.by_group(design.single_terms("e1"))
    assert terms.names == ("e1 | group=a", "e1 | group=b", "e1 | group=c")
    assert split_stratum(terms.names[1]) == ("e1", "group=b") and split_stratum("e1") == ("e1", "")
    # each person's term sits in their own level's column; the rows add up to the plain term
    np.testing.assert_allclose(terms.values.sum(axis=1), design.single_terms("e1").values[:, 0])
    assert ((terms.values != 0).sum(axis=1) <= 1).all()


@pytest.mark.parametrize("slopes", [SLOPES, {"a": 0.2, "b": 0.2, "c": 0.2}])
def test_the_interaction_test_is_statsmodels_wald_test(slopes):
    """With weak priors the posterior Wald test of the slopes' differences is the frequentist
    Wald test of the exposure x modifier terms (an exact reference on the same design)."""
    frame = _modified(900, seed=4, slopes=slopes)
    frame["group"] = pd.Categorical(frame["group"])
    design = make_design(
        frame, "y", "gaussian", ["e1"], ["age", "group"], group="group", id_column="x"
    )
    terms = design.by_group(design.single_terms("e1"))
    idata = sample(glm.build_glm(design, terms, glm.default_priors(None, "gaussian")), FAST)
    test = interaction(idata, "group", 3, "single_e1").iloc[0]
    X = np.column_stack([np.ones(design.n), terms.values, design.X])
    ols = sm.OLS(design.y, X).fit()
    contrasts = np.zeros((2, X.shape[1]))
    contrasts[[0, 1], [2, 3]], contrasts[:, 1] = 1, -1
    wald = ols.wald_test(contrasts, scalar=True, use_f=False)  # chi-square, not F
    assert test["term"] == "e1" and test["df"] == 2 and test["levels"] == 3
    # 2,000 draws: the posterior mean and covariance carry a few per cent Monte Carlo error
    assert test["wald"] == pytest.approx(float(wald.statistic), rel=0.1, abs=0.3)
    # the chi-square tail on 2 df, as stated
    assert test["test"] == "chi-square"
    assert test["p_interaction"] == pytest.approx(stats.chi2.sf(test["wald"], 2))
    if slopes is SLOPES:  # 0.3 apart with n = 900: found
        assert test["p_interaction"] < 0.01
        assert test["max_difference"] == pytest.approx(0.3, abs=0.12)


def _table_run(tmp_path, frame: pd.DataFrame, covariates=("age",), group="group", **model):
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    mapping = base_config(str(tmp_path / "cohort.csv"))
    mapping["table"] |= {"exposures": ["e1"], "covariates": list(covariates), "group": group}
    mapping["model"] = {"name": "glm", "kind": "single", **model}
    return parse_config(mapping, "by.yaml")


def test_the_modifier_is_coded_as_a_factor_and_adjusted_for(tmp_path):
    frame = _modified(200, seed=2, slopes=SLOPES).assign(SEQN=range(200))
    frame["site"] = frame["group"].map({"a": 1, "b": 2, "c": 3})  # numeric codes
    # a numeric covariate as the modifier (not the table's group, which loads as text)
    config = _table_run(tmp_path, frame, covariates=("age", "site"), group=None, by="site")
    design = workflow.build_design(config, workflow.load_data(config))
    assert design.group_levels == ("1", "2", "3")
    # its main effect: two dummies beside age (not one numeric column)
    assert design.covariate_columns == ("age", "site[2]", "site[3]")


def test_a_continuous_or_thin_modifier_is_refused_by_name(tmp_path):
    frame = _modified(200, seed=2, slopes=SLOPES).assign(SEQN=range(200))
    config = _table_run(tmp_path, frame, by="age")
    with pytest.raises(ConfigError, match=r"model.by 'age' has 200 distinct values"):
        workflow.build_design(config, workflow.load_data(config))
    frame.loc[:5, "group"] = "d"  # 6 persons
    config = _table_run(tmp_path, frame, by="group")
    with pytest.raises(ConfigError, match=r"model.by 'group': level\(s\) d \(6\)"):
        workflow.plan(config)
    frame.loc[:13, "group"] = "d"  # 14 persons: a quartile of them is too few for its slope
    config = _table_run(tmp_path, frame, by="group", kind="quantile")
    with pytest.raises(ConfigError, match=r"e1 Q\d \| group=d \(\d\) persons: too few"):
        workflow.plan(config)


def _differences_idata(contrasts: np.ndarray):
    """`beta` of one term with 3 levels: slope a = 0, b and c = a + the given differences."""
    slopes = np.column_stack([np.zeros(len(contrasts)), contrasts])
    names = [f"e1 | g={level}" for level in "abc"]
    return beta_idata(slopes[None], names)


def test_the_survey_test_is_an_f_test_on_the_design_df():
    """Adjusted survey draws are multivariate t on the design df: their covariance is df/(df-2)
    times the design-based one, which the test takes out before its F test."""
    rng = np.random.default_rng(8)
    mean, covariance, df = np.array([0.3, 0.1]), np.array([[0.04, 0.01], [0.01, 0.02]]), 15
    normal = rng.multivariate_normal(np.zeros(2), covariance, 200_000)
    scales = np.sqrt(df / rng.chisquare(df, len(normal)))
    test = interaction(_differences_idata(mean + normal * scales[:, None]), "g", 3, "f", df)
    exact = mean @ np.linalg.solve(covariance, mean)
    assert test.loc[0, "wald"] == pytest.approx(exact, rel=0.02)
    assert test.loc[0, "test"] == "F on 15 design df"
    assert test.loc[0, "p_interaction"] == pytest.approx(stats.f.sf(exact / 2, 2, df), rel=0.05)


def test_differences_without_variance_give_no_test_not_a_crash():
    same = np.tile([0.2, 0.2], (100, 1))  # the strata's slopes cannot be told apart
    test = interaction(_differences_idata(same), "g", 3, "f").iloc[0]
    assert test["df"] == 0 and np.isnan(test["p_interaction"]) and test["test"].startswith("none")
    degenerate = interaction(_differences_idata(np.ones((100, 2))), "g", 3, "f", design_df=2)
    assert np.isnan(degenerate.loc[0, "p_interaction"])


def test_a_study_stratifies_its_glm_analyses_by_each_subgroup(tmp_path):
    plain = load_study(_study_file(tmp_path))
    study = load_study(_study_file(tmp_path, subgroups=["sex"]))
    added = [f for f in study.fits if f.subgroup]
    # glm_single and glm_multi (the default), last covariate set, 2 outcomes x 2 weightings
    assert len(study.fits) == len(plain.fits) + len(added) and len(added) == 2 * 2 * 2
    by_label = {f.label: f for f in study.fits}
    fit = by_label["glm_single.y2.m2.by_sex.survey"]
    assert fit.subgroup == "sex" and fit.config.model.by == "sex" and fit.survey
    assert fit.config.table.covariates == ["age", "sex"] and fit.twin_label.endswith("by_sex")
    # the main fits are untouched (their hashes too: nothing is refitted)
    assert {f.label: f.hash for f in plain.fits}.items() <= {
        f.label: f.hash for f in study.fits
    }.items()
    named = load_study(_study_file(tmp_path, subgroups={"by": ["sex"], "analyses": ["glm_multi"]}))
    assert {f.analysis for f in named.fits if f.subgroup} == {"glm_multi"}


@pytest.mark.parametrize(
    "subgroups, message",
    [
        ({"by": ["sex"], "analyses": ["bkmr"]}, "'bkmr' is not a GLM"),
        ({"by": ["sex"], "analyses": ["glm_pairs"]}, "'glm_pairs' is not an analysis"),
        (["sex", "sex"], "list each column once"),
        (["body mass"], "folder name"),
        ({"by": ["sex"], "analyses": []}, "at least 1 item"),
        (["y2"], r"\['y2'\] are outcomes or exposures"),
    ],
)
def test_bad_subgroups_are_refused_by_name(tmp_path, subgroups, message):
    with pytest.raises(ConfigError, match=message):
        load_study(_study_file(tmp_path, subgroups=subgroups))


def test_a_variant_named_like_a_subgroup_fit_is_refused(tmp_path):
    variant = {
        "name": "by_sex",
        "analysis": "glm_multi",
        "priors": {"beta": {"distribution": "Normal", "mu": 0, "sigma": 1}},
    }
    with pytest.raises(ConfigError, match="labelled twice"):
        load_study(_study_file(tmp_path, subgroups=["sex"], sensitivity=[variant]))


def test_a_table_study_loads_a_modifier_that_is_no_covariate(tmp_path):
    study = load_study(_study_file(tmp_path, subgroups=["sex"]))
    by_label = {f.label: f for f in study.fits}
    assert by_label["glm_multi.y.m2.by_sex"].config.table.group is None  # a covariate in m2
    study = load_study(_study_file(tmp_path, subgroups={"by": ["stratum"]}))
    fit = next(f for f in study.fits if f.subgroup == "stratum")
    assert fit.config.table.group == "stratum"
    assert all(f.config.table.group is None for f in study.fits if not f.subgroup)


def _finished(study, fit, effects: dict, tests: dict | None = None) -> None:
    folder = study.fit_folder(fit)
    folder.mkdir(parents=True)
    (folder / RUN_MARKER).write_text(json.dumps({"kind": "fit"}))
    table = pd.DataFrame(effects).assign(measure="beta", ci_prob=0.95, estimate_is="median")
    table.to_csv(folder / "effects.csv", index=False)
    if tests is not None:
        pd.DataFrame(tests).to_csv(folder / "interaction.csv", index=False)


def test_the_subgroup_table_and_forest_plot_read_the_fits(tmp_path):
    subgroups = {"by": ["sex"], "analyses": ["glm_multi"]}
    study = load_study(_study_file(tmp_path, subgroups=subgroups, weighting=["unweighted"]))
    by_label = {f.label: f for f in study.fits}
    _finished(
        study,
        by_label["glm_multi.y.m2"],
        {"fit": "multi", "term": ["e1", "e2"], "estimate": [0.4, 0.0]}
        | {"lower": [0.3, -0.1], "upper": [0.5, 0.1]},
    )
    _finished(
        study,
        by_label["glm_multi.y.m2.by_sex"],
        {"fit": "multi", "term": ["e1 | sex=female", "e1 | sex=male", "e2 | sex=female"]}
        | {"estimate": [0.6, 0.2, 0.0], "lower": [0.4, 0.0, -0.2], "upper": [0.8, 0.4, 0.2]},
        {"fit": "multi", "term": ["e1", "e2"], "by": "sex", "p_interaction": [0.004, 0.9]},
    )
    table = study_subgroups.subgroup_table(study)
    assert table["subgroup"].tolist() == ["all", "all", "sex", "sex", "sex"]
    assert table["level"].tolist() == ["all", "all", "female", "male", "female"]
    assert table["p_interaction"].tolist()[2:] == [0.004, 0.004, 0.9]
    wide = study_subgroups.wide(table)
    column = "y | m2 | unweighted"
    e1 = wide[wide["exposure"] == "e1"].set_index("level")[column]
    assert e1.to_dict() == {
        "all": "0.4 [0.3, 0.5]",
        "female": "0.6 [0.4, 0.8]",
        "male": "0.2 [0, 0.4]",
        "P for interaction": "0.004",
    }
    figures = study_subgroups.figures(table)
    assert list(figures) == ["glm_multi.y.m2.unweighted"]
    axes = figures["glm_multi.y.m2.unweighted"].axes
    assert [ax.get_title() for ax in axes] == ["e1", "e2"]
    labels = [t.get_text().strip() for t in axes[0].get_yticklabels()]
    assert labels == ["all", "sex:", "female", "male"]
    notes = [t.get_text() for t in axes[0].texts]
    assert notes == ["P-int 0.004"]


def test_a_quantile_analysis_is_drawn_by_its_trends():
    rows = []
    for subgroup, level, p in [("all", "all", None), ("sex", "female", 0.2), ("sex", "male", 0.2)]:
        for model_fit, term in [("quantile_e1", "e1 Q4"), ("trend_e1", f"e1{TREND}")]:
            rows.append(
                {"analysis": "glm_quantile", "outcome": "op", "covariates": "m1"}
                | {"weighting": "unweighted", "exposure": term, "subgroup": subgroup}
                | {"level": level, "measure": "odds ratio", "estimate": 1.2, "lower": 0.9}
                | {"upper": 1.6, "ci_prob": 0.95, "p_interaction": p, "fit": "x"}
                | {"model_fit": model_fit}
            )
    figure = study_subgroups.figures(pd.DataFrame(rows))["glm_quantile.op.m1.unweighted"]
    assert [ax.get_title() for ax in figure.axes] == ["e1"]  # the trend alone
    assert figure.axes[0].get_xscale() == "log"  # a ratio
    words = " ".join(text.get_text() for text in figure.texts)  # the shared x label
    assert "odds ratio, trend, per SD of the quantile medians" in words
