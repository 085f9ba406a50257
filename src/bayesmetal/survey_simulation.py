"""Coverage of design-adjusted intervals on a simulated complex survey (issue #10).

A seeded finite population stands in for the nation: `strata` strata of `psus_per_stratum`
PSUs (clusters of a few hundred persons each), three log-normal metals correlated within the
PSU, an age covariate, a subgroup (`group` 1: about a fifth of the population, its share
varying by PSU) and a gaussian outcome

    y = 1 + 0.3 group + sum_j beta_group,j (log z_j - mu_j) + 0.01 (age - 50) + u_psu + e,

whose metal effects are stronger in group 1 (`BETA`) and with a PSU random effect u_psu, so
that persons of a PSU are alike. The metals' distribution is the same in both groups: quantile
cut points taken on the (unweighted) sample, as `design.make_design` takes them, then estimate
the population's, and only the outcome makes the sampling informative.

The population value of a coefficient is the census fit: the least-squares fit of the analysis
model to every person of the population, which design-based inference targets. For the GLM
that is the regression of y on the log metals and age. For BWQS it is the census fit of
b0 + b1 sum_j w_j q_j + gamma age with q_j the population quartile scores: with b1 w_j = theta_j
this is the linear regression on the scores, and when every theta_j has the same sign (checked)
the simplex constraint is inactive, so b1 = sum_j theta_j and w_j = theta_j / b1 in closed form.

The sample has two stages: `psus` PSUs per stratum by simple random sampling, then within each
sampled PSU a fixed number of persons of each group (`per_psu`), group 1 at several times the
rate of group 0. Weights are 1 / inclusion probability; the design (normalised weights,
stratum and PSU codes) is built by `survey_design.survey_frame(...).weights_for(...)`, as the
NHANES pipeline builds it. Ignoring the weights over-represents group 1 (a biased slope);
ignoring the PSUs understates the variance.

BKMR's overall risk (all metals at their q-th sample quantile against all at the median) has
as population value the same contrast of the population's regression function, which is linear
in the log metals (the metals are independent of the group and of u_psu): the census GLM
slopes times the differences of the sample's log-metal quantiles, the points BKMR evaluates h
at in that replicate.

`coverage_replicate` fits one sample weighted (then design-adjusted by `workflow.fit_design`,
with t intervals on the design df, the config default) and unweighted, and records whether
each 95% interval covers the population value; the weighted pseudo-posterior before the
adjustment (kept in the idata; for BKMR, the summaries without the design) gives the coverage
with the adjustment disabled, and adjusting it again with normal intervals the coverage
without the t tails, with no extra sampling. `coverage_table` summarises replicates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from bayesmetal.arviz_api import InferenceData
from bayesmetal.design import Design, make_design
from bayesmetal.models.bkmr import BkmrSpec, summary_posterior
from bayesmetal.models.bwqs import BwqsSpec
from bayesmetal.models.contract import Fit
from bayesmetal.models.glm import GlmSpec
from bayesmetal.run_schema import ModelSpec, SamplerSpec
from bayesmetal.summaries.bkmr import overall_risk
from bayesmetal.survey_adjust import UNADJUSTED, adjust
from bayesmetal.survey_design import SurveyWeights, survey_frame
from bayesmetal.workflow import fit_design

METALS = ("Pb", "Cd", "Mn")
LOG_MEAN = np.log([0.8, 0.25, 10.0])
# metal effects per unit of log concentration, by group: Pb and Cd act more strongly in group 1
# (the informative part); Mn's effect is the same in both groups, so its unweighted interval
# fails by ignoring the clustering alone
BETA = {0: np.array([-0.10, -0.05, -0.05]), 1: np.array([-0.50, -0.30, -0.05])}
COVARIATES = ("age",)
QUANTILES = 4
# design-adjusted (t on the design df), the same with normal intervals, weighted only, neither
WEIGHTINGS = ("adjusted", "adjusted_normal", "pseudo", "unweighted")


@dataclass(frozen=True)
class PopulationSpec:
    """Sizes and variance components of the finite population."""

    strata: int = 20
    psus_per_stratum: int = 20
    mean_psu_size: int = 300
    group_share: float = 0.2  # mean share of group 1; Beta(2, 8) across PSUs
    exposure_psu_sd: float = 0.4  # SD of the PSU part of each log metal
    exposure_person_sd: float = 0.6  # SD of the person part
    exposure_corr: float = 0.5  # correlation between metals, in both parts
    outcome_psu_sd: float = 0.3  # SD of the PSU random effect u_psu
    noise_sd: float = 1.0


@dataclass(frozen=True)
class SampleSpec:
    """The two-stage sample: PSUs per stratum (simple random), persons per PSU by group."""

    psus: int = 2
    per_psu: dict[int, int] = field(default_factory=lambda: {0: 20, 1: 25})


@dataclass(frozen=True)
class Population:
    """One row a person (SEQN, SDMVSTRA, SDMVPSU numbered within stratum, psu numbered across
    strata, group, age, metals, y), and the population values of the analysis parameters."""

    frame: pd.DataFrame
    spec: PopulationSpec
    truth: dict[str, float]  # parameter ('beta[Pb]', 'b1', ...) -> census-fit value

    @property
    def n(self) -> int:
        return len(self.frame)


def _correlated(rng: np.random.Generator, size: int, sd: float, corr: float) -> np.ndarray:
    m = len(METALS)
    cov = sd**2 * (corr * np.ones((m, m)) + (1 - corr) * np.eye(m))
    return rng.multivariate_normal(np.zeros(m), cov, size)


def quartile_scores(values: np.ndarray) -> np.ndarray:
    """Scores 0..3 of each column against its own quartiles, as `exposures.quantile_scores`."""
    scores = np.empty(values.shape, dtype=int)
    for j in range(values.shape[1]):
        edges = np.unique(np.quantile(values[:, j], np.arange(QUANTILES + 1) / QUANTILES))[1:-1]
        scores[:, j] = np.searchsorted(edges, values[:, j], side="left")
    return scores


def census_values(frame: pd.DataFrame) -> dict[str, float]:
    """Population values: the GLM's and BWQS's least-squares fits to every person."""
    ones = np.ones((len(frame), 1))
    age = frame[list(COVARIATES)].to_numpy(float)
    y = frame["y"].to_numpy(float)
    logs = np.log(frame[list(METALS)].to_numpy(float))
    glm = np.linalg.lstsq(np.hstack([ones, logs, age]), y, rcond=None)[0]
    scores = quartile_scores(logs)
    theta = np.linalg.lstsq(np.hstack([ones, scores, age]), y, rcond=None)[0][1 : 1 + len(METALS)]
    if not (np.all(theta < 0) or np.all(theta > 0)):
        raise ValueError(
            f"census fit on quartile scores has mixed signs {theta}: BWQS's b1 has no closed form"
        )
    truth = {f"beta[{name}]": float(b) for name, b in zip(METALS, glm[1:], strict=False)}
    truth["b1"] = float(theta.sum())
    truth |= {f"w[{name}]": float(t / theta.sum()) for name, t in zip(METALS, theta, strict=True)}
    return truth


def make_population(spec: PopulationSpec = PopulationSpec(), seed: int = 20261123) -> Population:
    """The finite population (seeded) and its census-fit parameter values."""
    rng = np.random.default_rng(seed)
    n_psus = spec.strata * spec.psus_per_stratum
    sizes = np.maximum(50, np.round(spec.mean_psu_size * rng.lognormal(0, 0.3, n_psus))).astype(int)
    psu = np.repeat(np.arange(n_psus), sizes)
    n = len(psu)
    share = rng.beta(2, 2 / spec.group_share - 2, n_psus)
    group = (rng.random(n) < share[psu]).astype(int)
    psu_part = _correlated(rng, n_psus, spec.exposure_psu_sd, spec.exposure_corr)
    person_part = _correlated(rng, n, spec.exposure_person_sd, spec.exposure_corr)
    centred = psu_part[psu] + person_part
    age = np.clip(rng.normal(50, 15, n), 20, 85).round()
    slopes = np.where(group[:, None] == 1, BETA[1], BETA[0])
    y = (
        1.0
        + 0.3 * group
        + np.sum(slopes * centred, axis=1)
        + 0.01 * (age - 50)
        + rng.normal(0, spec.outcome_psu_sd, n_psus)[psu]
        + rng.normal(0, spec.noise_sd, n)
    )
    frame = pd.DataFrame(
        {
            "SEQN": np.arange(1, n + 1),
            "SDMVSTRA": psu // spec.psus_per_stratum + 1,
            "SDMVPSU": psu % spec.psus_per_stratum + 1,
            "psu": psu,
            "group": group,
            "age": age,
            **{name: np.exp(LOG_MEAN[j] + centred[:, j]) for j, name in enumerate(METALS)},
            "y": y,
        }
    )
    return Population(frame, spec, census_values(frame))


def draw_sample(
    population: Population, rng: np.random.Generator, spec: SampleSpec = SampleSpec()
) -> tuple[pd.DataFrame, SurveyWeights]:
    """A two-stage sample (rows of the population with their `weight` = 1 / inclusion
    probability) and its design as a model sees it."""
    frame = population.frame
    per_stratum = population.spec.psus_per_stratum
    chosen = [
        stratum * per_stratum + rng.choice(per_stratum, spec.psus, replace=False)
        for stratum in range(population.spec.strata)
    ]
    first_stage = spec.psus / per_stratum
    rows, weights = [], []
    members = frame.groupby(["psu", "group"]).indices
    for psu in np.concatenate(chosen):
        for grp, take in spec.per_psu.items():
            people = members.get((psu, grp), np.array([], dtype=int))
            k = min(take, len(people))
            if k == 0:
                continue
            rows.append(rng.choice(people, k, replace=False))
            weights.append(np.full(k, len(people) / (k * first_stage)))
    index = np.concatenate(rows)
    sample = frame.iloc[index].reset_index(drop=True).assign(weight=np.concatenate(weights))
    design = survey_frame(
        sample,
        in_domain=pd.Series(True, index=sample.index),
        weight=sample["weight"],
        weight_variable="weight",
        strata_variable="SDMVSTRA",
        psu_variable="SDMVPSU",
        nest=True,
    )
    return sample, design.weights_for(sample["SEQN"].to_numpy())


def sample_designs(
    sample: pd.DataFrame, survey: SurveyWeights
) -> dict[str, tuple[Design, SurveyWeights | None]]:
    """The analysis design with and without the survey: 'weighted' and 'unweighted'."""
    designs = {}
    for name, design in (("weighted", replace(survey, intervals="t")), ("unweighted", None)):
        designs[name] = make_design(
            sample,
            "y",
            "gaussian",
            list(METALS),
            list(COVARIATES),
            QUANTILES,
            source="simulated survey sample",
            survey=design,
        )
    return designs


MODELS: dict[str, tuple[ModelSpec, str]] = {
    # name -> (spec, the variable whose intervals are scored; for BKMR the summary)
    "glm": (GlmSpec(name="glm", kind="multi"), "beta"),
    "bwqs": (BwqsSpec(name="bwqs"), "b1"),
    "bkmr": (BkmrSpec(name="bkmr", knots=50), "overall"),
}
OVERALL_QS = (0.25, 0.75)  # BKMR overall-risk quantiles scored (against all at the median)


def _draws(dataset, variable: str) -> dict[str, np.ndarray]:
    """Draws of `variable` flattened over chains, one entry per element ('beta[Pb]')."""
    values = dataset[variable]
    flat = values.stack(sample=("chain", "draw")).transpose("sample", ...)
    if flat.ndim == 1:
        return {variable: flat.to_numpy()}
    dim = flat.dims[1]
    return {f"{variable}[{c}]": flat.sel({dim: c}).to_numpy() for c in flat[dim].to_numpy()}


def interval_rows(
    dataset, variable: str, truth: dict[str, float], prob: float = 0.95
) -> list[dict[str, float]]:
    """Equal-tailed interval, posterior mean and coverage of each element of `variable`."""
    rows = []
    for name, draws in _draws(dataset, variable).items():
        lower, upper = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2])
        rows.append(
            {
                "parameter": name,
                "truth": truth[name],
                "mean": float(draws.mean()),
                "lower": float(lower),
                "upper": float(upper),
                "covered": bool(lower <= truth[name] <= upper),
            }
        )
    return rows


def overall_truth(design: Design, truth: dict[str, float]) -> dict[str, float]:
    """The population value of the overall risk at each of OVERALL_QS: the census slopes
    times the differences of the sample's log-metal quantiles (module docstring)."""
    slopes = np.array([truth[f"beta[{name}]"] for name in METALS])
    centre = np.quantile(design.log_exposures, 0.5, axis=0)
    return {
        f"overall[{q:g}]": float(slopes @ (np.quantile(design.log_exposures, q, axis=0) - centre))
        for q in OVERALL_QS
    }


def bkmr_intervals(
    fit: Fit, idata: InferenceData, design: Design, truth: dict[str, float], seed: int
) -> dict[str, list[dict[str, float]]]:
    """Per weighting, the overall-risk rows at OVERALL_QS (as `interval_rows`) from BKMR's
    summaries: with a survey design adjusted (t, normal) and not ('pseudo')."""
    spec = MODELS["bkmr"][0]
    post = summary_posterior(idata, design, spec, fit.constant_data["knots"][1], seed)
    if post.survey is None:
        variants = {"unweighted": post}
    else:
        variants = {
            "adjusted": post,
            "adjusted_normal": replace(post, survey=replace(post.survey, intervals="normal")),
            "pseudo": replace(post, survey=None),
        }
    values = overall_truth(design, truth)
    rows = {}
    for weighting, variant in variants.items():
        table = overall_risk(variant, qs=OVERALL_QS, seed=seed).set_index("quantile")
        rows[weighting] = [
            {
                "parameter": name,
                "truth": value,
                "mean": float(table.loc[q, "mean"]),
                "lower": float(table.loc[q, "lower"]),
                "upper": float(table.loc[q, "upper"]),
                "covered": bool(table.loc[q, "lower"] <= value <= table.loc[q, "upper"]),
            }
            for q, (name, value) in zip(OVERALL_QS, values.items(), strict=True)
        ]
    return rows


def posterior_intervals(
    fit: Fit, idata: InferenceData, design: Design, variable: str, truth: dict[str, float]
) -> dict[str, list[dict[str, float]]]:
    """Per weighting, the rows of `variable` (`interval_rows`): the adjusted posterior, the
    pseudo-posterior adjusted again with normal intervals, and the pseudo-posterior; the
    posterior alone ('unweighted') without a survey design."""
    if design.survey is None:
        return {"unweighted": interval_rows(idata.posterior, variable, truth)}
    pseudo = getattr(idata, UNADJUSTED)
    normal = adjust(
        fit.build(), InferenceData(posterior=pseudo), replace(design.survey, intervals="normal")
    )
    datasets = {"adjusted": idata.posterior, "adjusted_normal": normal.posterior, "pseudo": pseudo}
    return {name: interval_rows(data, variable, truth) for name, data in datasets.items()}


def coverage_replicate(
    population: Population,
    replicate: int,
    models: tuple[str, ...] = ("glm",),
    sampler: SamplerSpec | None = None,
    seed: int = 1,
    sample_spec: SampleSpec = SampleSpec(),
) -> pd.DataFrame:
    """One replicate: draw a sample, fit each model weighted (design-adjusted) and unweighted;
    one row per model, parameter and weighting (WEIGHTINGS: 'adjusted' with t intervals,
    'adjusted_normal', 'pseudo': weighted but not adjusted, 'unweighted')."""
    rng = np.random.default_rng([seed, replicate])
    sample, survey = draw_sample(population, rng, sample_spec)
    designs = sample_designs(sample, survey)
    sampler = sampler or SamplerSpec(chains=2, tune=500, draws=500, progressbar=False)
    sampler = sampler.model_copy(update={"seed": seed * 100_003 + replicate})
    rows = []
    for model in models:
        spec, variable = MODELS[model]
        for design in designs.values():
            start = time.perf_counter()
            fits, idatas = fit_design(design, spec, sampler)
            idata = idatas[fits[0].label]
            if model == "bkmr":
                scored = bkmr_intervals(fits[0], idata, design, population.truth, sampler.seed)
            else:
                scored = posterior_intervals(fits[0], idata, design, variable, population.truth)
            seconds = time.perf_counter() - start
            rows += [
                {
                    "replicate": replicate,
                    "model": model,
                    "weighting": weighting,
                    **row,
                    "n": design.n,
                    "fit_seconds": seconds,
                }
                for weighting, score_rows in scored.items()
                for row in score_rows
            ]
    return pd.DataFrame(rows)


def coverage_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per model, parameter and weighting: coverage, its Monte Carlo SE sqrt(p(1-p)/R), mean
    interval width, bias (mean posterior mean - population value), the SD of the posterior
    means across replicates and the mean half-width / 1.96 to compare with it."""
    table = (
        results.assign(width=results["upper"] - results["lower"])
        .assign(error=lambda t: t["mean"] - t["truth"])
        .groupby(["model", "parameter", "weighting"], sort=False)
        .agg(
            replicates=("covered", "size"),
            coverage=("covered", "mean"),
            truth=("truth", "first"),
            bias=("error", "mean"),
            sd_estimate=("mean", "std"),
            mean_width=("width", "mean"),
        )
        .reset_index()
    )
    table["mc_se"] = np.sqrt(table["coverage"] * (1 - table["coverage"]) / table["replicates"])
    table["mean_sd_interval"] = table["mean_width"] / (2 * 1.959964)
    return table
