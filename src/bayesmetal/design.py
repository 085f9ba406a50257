"""Design: the numeric arrays a model needs, built from an analysis table.

Exposures are log-transformed (and standardised, and quantile-scored) on the analysis
sample; categorical covariates are dummy-coded against their first level; numeric
covariates are centred and scaled (so one prior fits all). Every transform is recorded so
results can be mapped back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from bayesmetal import validate
from bayesmetal.errors import DataError
from bayesmetal.exposures import log_transform, quantile_scores, standardise
from bayesmetal.survey_design import SurveyWeights


@dataclass(frozen=True)
class Terms:
    """Exposure terms entering a GLM: a matrix and a label per column."""

    values: np.ndarray
    names: tuple[str, ...]
    exposure: str = ""  # the exposure they describe, for per-exposure fits


@dataclass(frozen=True)
class Design:
    """Everything a model builder reads; no model reads the analysis table itself."""

    outcome: str
    family: str
    y: np.ndarray  # floats; int64 for count families (poisson, negative_binomial)
    exposures: tuple[str, ...]
    concentrations: np.ndarray  # (n, M) as measured
    log_exposures: np.ndarray  # (n, M)
    z: np.ndarray  # (n, M) standardised logs
    log_centre: np.ndarray
    log_scale: np.ndarray
    quantiles: np.ndarray  # (n, M) scores 0..q-1
    n_quantiles: int
    quantile_edges: dict[str, list[float]]
    X: np.ndarray  # (n, P) covariates
    covariate_columns: tuple[str, ...]
    covariate_scaling: dict[str, tuple[float, float]]
    ids: np.ndarray
    group: np.ndarray | None = None
    group_levels: tuple[str, ...] = ()
    group_name: str | None = None
    survey: SurveyWeights | None = None  # a design-based (weighted) analysis
    notes: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)  # exposure / outcome -> unit, if known

    @property
    def n(self) -> int:
        return len(self.y)

    def rows(self, index: np.ndarray) -> Design:
        """The same design for a subset of persons (exposure and covariate scaling unchanged)."""
        per_person = ("y", "concentrations", "log_exposures", "z", "quantiles", "X", "ids")
        sliced = {name: getattr(self, name)[index] for name in per_person}
        sliced["group"] = None if self.group is None else self.group[index]
        sliced["survey"] = None if self.survey is None else self.survey.rows(index)
        return replace(self, **sliced)

    @property
    def likelihood_weights(self) -> np.ndarray | None:
        """Each person's weight in a pseudo-likelihood (None: unweighted)."""
        return None if self.survey is None else self.survey.weights

    def multi_terms(self) -> Terms:
        """All exposures together, per unit of log concentration (centred: the slope is the
        same, but the intercept no longer moves with it, which NUTS needs)."""
        return Terms(self.log_exposures - self.log_centre, self.exposures)

    def single_terms(self, exposure: str) -> Terms:
        """One exposure, per unit of (centred) log concentration."""
        j = self.exposures.index(exposure)
        return Terms(self.log_exposures[:, [j]] - self.log_centre[j], (exposure,), exposure)

    def quantile_terms(self, exposure: str) -> Terms:
        """Indicators of quantiles 2..q of one exposure (quantile 1 is the reference); only
        those with persons: ties at the LOD can merge quantiles (`quantile_scores`), and an
        indicator of nobody would report its prior as an effect."""
        j = self.exposures.index(exposure)
        scores = self.quantiles[:, j]
        levels = [int(k) for k in np.unique(scores) if k > 0]
        values = np.column_stack([(scores == k).astype(float) for k in levels])
        return Terms(values, tuple(f"{exposure} Q{k + 1}" for k in levels), exposure)

    def trend_terms(self, exposure: str) -> Terms:
        """Each person's quantile median concentration as a continuous trend variable,
        standardised (so its effect is per SD of the quantile medians; P for trend is
        unchanged by the scaling, and the sampler needs it: raw Se medians near 180 ug/L
        made intercept and slope collinear)."""
        j = self.exposures.index(exposure)
        scores, conc = self.quantiles[:, j], self.concentrations[:, j]
        medians = {k: float(np.median(conc[scores == k])) for k in np.unique(scores)}
        values = np.array([medians[k] for k in scores])
        if not values.std() > 0:
            raise DataError(f"exposure {exposure!r} has a single quantile group: no trend")
        values = (values - values.mean()) / values.std(ddof=1)
        return Terms(values[:, None], (f"{exposure}{TREND}",), exposure)

    def by_group(self, terms: Terms) -> Terms:
        """Each term once per level of the grouping column, zero outside it: a slope per
        stratum (effect modification), named `term | column=level` (`split_stratum`)."""
        if self.group is None:
            raise ValueError("by_group needs a design with a grouping column")
        columns, names = [], []
        for j, name in enumerate(terms.names):
            for g, level in enumerate(self.group_levels):
                columns.append(terms.values[:, j] * (self.group == g))
                names.append(f"{name}{STRATUM}{self.group_name}={level}")
        return Terms(np.column_stack(columns), tuple(names), terms.exposure)


TREND = " trend (per SD of quantile medians)"  # after the exposure: a trend term's name
STRATUM = " | "  # between a term and its stratum in a stratified term's name


def split_stratum(name: str) -> tuple[str, str]:
    """`Pb | sex=female` -> (`Pb`, `sex=female`); a term with no stratum -> (name, '')."""
    term, _, stratum = name.partition(STRATUM)
    return term, stratum


def _covariate_matrix(
    frame: pd.DataFrame, covariates: list[str], source: str
) -> tuple[np.ndarray, list[str], dict[str, tuple[float, float]]]:
    blocks, names, scaling = [], [], {}
    for cov in covariates:
        values = frame[cov]
        if values.isna().any():
            raise DataError(
                f"{source}: covariate {cov!r} has {int(values.isna().sum())} missing values in the "
                "analysis sample; make it required or give it a missing_level"
            )
        text = pd.api.types.is_string_dtype(values.dtype)  # object or pandas 3's str
        if isinstance(values.dtype, pd.CategoricalDtype) or text:
            cat = pd.Categorical(values)
            levels = [lv for lv in cat.categories if (cat == lv).any()]
            if len(levels) < 2:
                raise DataError(
                    f"{source}: covariate {cov!r} has a single level in the analysis sample"
                )
            for level in levels[1:]:
                blocks.append((cat == level).astype(float))
                names.append(f"{cov}[{level}]")
        else:
            numeric = validate.numeric_covariate(values, cov, source)
            centre, scale = float(numeric.mean()), float(numeric.std(ddof=1))
            blocks.append((numeric - centre) / scale)
            names.append(cov)
            scaling[cov] = (centre, scale)
    matrix = np.column_stack(blocks) if blocks else np.zeros((len(frame), 0))
    return matrix, names, scaling


def interval_words(survey: SurveyWeights) -> str:
    """How the adjusted posterior's intervals are made, in words for notes and reports."""
    if survey.t_df is None:
        return "normal intervals"
    return f"t intervals on {survey.t_df} design df"


def survey_notes(survey: SurveyWeights | None, coefficients: int) -> list[str]:
    """The warning NHANES's analytic guidelines ask for: a design with fewer degrees of
    freedom than coefficients (a single 2-year cycle has 15) cannot estimate their joint
    design-based variance well."""
    if survey is None:
        return []
    said = [
        f"survey design: {survey.label}; weighted pseudo-likelihood, posterior adjusted to "
        f"the design, {interval_words(survey)}"
    ]
    if survey.df >= coefficients:
        return said
    return said + [
        f"survey design: {survey.df} design degrees of freedom (PSUs - strata) but "
        f"{coefficients} regression coefficients with every exposure in one model (intercept, "
        "exposures, covariates); the design-based variance is unstable (R's svyglm gives no "
        "intervals). Pool more cycles, or use fewer covariates"
    ]


def make_design(
    frame: pd.DataFrame,
    outcome: str,
    family: str,
    exposures: list[str],
    covariates: list[str],
    n_quantiles: int = 4,
    group: str | None = None,
    id_column: str = "SEQN",
    source: str = "analysis table",
    units: dict[str, str] | None = None,
    survey: SurveyWeights | None = None,
    slopes_per_exposure: int = 1,
) -> Design:
    """Build a Design from an analysis table (one row a person), validated first
    (`validate`: errors name `source` and the column). `slopes_per_exposure`: one per
    stratum of an effect modifier, counted where coefficients are."""
    missing = [
        c
        for c in [outcome, *exposures, *covariates, *([group] if group else [])]
        if c not in frame.columns
    ]
    if missing:
        raise DataError(f"{source} has no column(s) {', '.join(missing)}")
    # at least one coefficient a covariate before coding; exact count once factors are coded
    validate.enough_rows(len(frame), 1 + len(exposures) + len(covariates), source)
    validate.analysis_table(frame, outcome, family, exposures, id_column, source)
    y = frame[outcome].astype(float).to_numpy()
    if family in validate.COUNT_FAMILIES:  # validated whole and >= 0; counts stay integers (the
        y = y.astype(np.int64)  # dtype PyMC's count likelihoods observe; it truncates floats)
    logs = log_transform(frame, exposures)
    z, centre, scale = standardise(logs)
    scores, edges = {}, {}
    for name in exposures:
        scores[name], cut_points = quantile_scores(frame[name], n_quantiles)
        edges[name] = [float(e) for e in cut_points]
    notes = [
        f"{name}: {len(e) + 1} distinct quantile groups (ties at the LOD)"
        for name, e in edges.items()
        if len(e) + 1 < n_quantiles
    ]
    X, columns, scaling = _covariate_matrix(frame, covariates, source)
    coefficients = 1 + len(exposures) * slopes_per_exposure + len(columns)
    validate.enough_rows(len(frame), coefficients, source)
    group_index, group_levels = None, ()
    if group is not None:
        cat = pd.Categorical(frame[group]).remove_unused_categories()  # levels with persons
        if cat.isna().any():
            raise DataError(f"group column {group!r} has missing values")
        group_levels = tuple(str(c) for c in cat.categories)
        group_index = cat.codes.astype(int)
    ids = frame[id_column].to_numpy() if id_column in frame.columns else np.arange(len(frame))
    return Design(
        outcome=outcome,
        family=family,
        y=y,
        exposures=tuple(exposures),
        concentrations=frame[exposures].astype(float).to_numpy(),
        log_exposures=logs.to_numpy(),
        z=z.to_numpy(),
        log_centre=centre.to_numpy(),
        log_scale=scale.to_numpy(),
        quantiles=np.column_stack([scores[n].to_numpy() for n in exposures]),
        n_quantiles=n_quantiles,
        quantile_edges=edges,
        X=X,
        covariate_columns=tuple(columns),
        covariate_scaling=scaling,
        ids=ids,
        group=group_index,
        group_levels=group_levels,
        group_name=group,
        survey=survey,
        notes=notes + survey_notes(survey, coefficients),
        units={k: v for k, v in (units or {}).items() if k in (outcome, *exposures)},
    )
