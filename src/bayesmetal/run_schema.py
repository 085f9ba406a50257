"""The run schema: a whole analysis file (data source, analysis, model, priors, sampler,
summaries, output).

Each registered model declares its own `model:` section as a subclass of `ModelSpec`; the
loader (`bayesmetal.config`) validates against the union of them, and turns the `priors:`
block into pymc-extras `Prior` objects as it loads.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, PlainSerializer, field_validator, model_validator
from pymc_extras.prior import Prior

from bayesmetal.cohort_schema import CohortSpec, Strict, SurveySpec
from bayesmetal.priors import from_mappings, to_mapping


class DataSpec(Strict):
    """Where the NHANES files are: a folder with one sub-folder per cycle."""

    nhanes_dir: str = "data/nhanes"


def one_role_each(roles: dict[str, list[str]]) -> None:
    """A column may be listed once and play one role: the outcome as a covariate, an exposure
    twice or an exposure also adjusted for would fit a model nobody meant."""
    seen: dict[str, str] = {}
    for role, columns in roles.items():
        for column in columns:
            if column in seen:
                where = role if seen[column] == role else f"{seen[column]} and {role}"
                raise ValueError(f"column {column!r} is listed twice ({where})")
            seen[column] = role


class TableSource(Strict):
    """A user's own cohort: a CSV or parquet file and which column is what."""

    path: str
    outcome: str
    family: Literal["gaussian", "bernoulli", "poisson", "negative_binomial"]
    exposures: list[str] = Field(min_length=1)
    covariates: list[str] = []
    categorical: list[str] = []  # covariates to dummy-code even if stored as numbers
    weight: str | None = None
    group: str | None = None
    id: str | None = None
    encoding: str | None = None  # of a CSV; default: UTF-8, else Windows-1252 (and said so)
    units: dict[str, str] = {}  # column -> unit, for tables and figures ({Pb: ug/dL})

    @model_validator(mode="after")
    def _categorical_are_covariates(self) -> TableSource:
        extra = set(self.categorical) - set(self.covariates) - {self.group}
        if extra:
            raise ValueError(
                f"'categorical' lists columns that are not covariates: {sorted(extra)}"
            )
        roles = {"outcome": [self.outcome], "exposures": self.exposures}
        roles |= {"covariates": self.covariates, "id": [self.id] if self.id else []}
        roles |= {"weight": [self.weight] if self.weight else []}
        one_role_each(roles)
        unknown = set(self.units) - {self.outcome, *self.exposures}
        if unknown:
            raise ValueError(
                f"'units' names columns that are not the outcome or an exposure: {sorted(unknown)}"
            )
        return self


class AnalysisSpec(Strict):
    """Which outcome, exposures and covariates of the cohort a model uses."""

    outcome: str | None = None  # required with a cohort; a table names its own
    exposures: list[str] | None = None  # default: all of the cohort's
    covariates: list[str] | None = None  # default: all of the cohort's

    @model_validator(mode="after")
    def _one_role_each(self) -> AnalysisSpec:
        roles = {"outcome": [self.outcome] if self.outcome else []}
        roles |= {"exposures": self.exposures or [], "covariates": self.covariates or []}
        one_role_each(roles)
        return self


class ModelSpec(Strict):
    """Base of every model's `model:` section: the model's structure as top-level keys, and
    where a model has them, `engine:` (how it is sampled) and `summaries:` (what is reported)
    as sub-sections."""

    name: str

    def quantile_count(self) -> int:
        """Quantile groups of the exposures' quantile scores (models that use them say so)."""
        return 4

    def group_column(self) -> tuple[str, str] | None:
        """(config key, column) of a grouping column the model uses, if any."""
        return None

    def modifies_effects(self) -> bool:
        """Whether the grouping column is an effect modifier (GLM's by:): coded as a factor
        and adjusted for as a covariate, so each stratum's slope is its own."""
        return False


class SamplerSpec(Strict):
    """MCMC settings; the seed fixes every random choice of a run."""

    chains: int = Field(default=4, ge=1, le=64)
    tune: int = Field(default=1000, ge=0)
    draws: int = Field(default=1000, ge=1)
    target_accept: float = Field(default=0.9, gt=0, lt=1)
    seed: int = Field(default=20240601, ge=0)
    backend: Literal["auto", "pymc", "nutpie"] = "auto"
    cores: int | None = Field(default=None, ge=1)
    progressbar: bool = True


class DiagnosticTargets(Strict):
    """Thresholds a run is flagged against (never hidden)."""

    max_rhat: float = 1.01
    min_ess: float = 400
    max_divergences: int = 0


class SummarySpec(Strict):
    """How posterior summaries are reported."""

    ci_prob: float = Field(default=0.95, gt=0, lt=1)
    targets: DiagnosticTargets = DiagnosticTargets()
    # PSIS-LOO of each unweighted PyMC fit (loo.csv, loo_pointwise.csv); studies turn it on
    loo: bool = False


# A run folder's own name: no separators, no '..', nothing hidden, so it stays under root.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class OutputSpec(Strict):
    """Where run folders go; the run name defaults to <config name>-<time>."""

    root: str = "models"
    name: str | None = None

    @field_validator("name")
    @classmethod
    def _stays_under_root(cls, name: str | None) -> str | None:
        if name is not None and not RUN_NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a plain folder name (letters, digits, '.', '_', '-'; no '/' "
                "or '..'): run folders stay under output.root"
            )
        return name


PriorField = Annotated[Prior, PlainSerializer(to_mapping, return_type=dict)]


class RunConfig(Strict):
    """A whole analysis file: data, cohort or table, analysis, model, priors, sampler."""

    data: DataSpec = DataSpec()
    cohort: CohortSpec | None = None
    table: TableSource | None = None
    analysis: AnalysisSpec = AnalysisSpec()
    model: ModelSpec | None = None
    priors: dict[str, PriorField] = {}
    survey: bool | SurveySpec = False  # true: the cohort's design (or NHANES's defaults)
    sampler: SamplerSpec = SamplerSpec()
    summaries: SummarySpec = SummarySpec()
    output: OutputSpec = OutputSpec()
    source: str = ""  # set by load_config: the file the config came from

    model_config = {"arbitrary_types_allowed": True}

    @field_validator("priors", mode="before")
    @classmethod
    def _as_priors(cls, value: Any) -> Any:
        """YAML prior mappings become `Prior` objects here, so a bad one fails at load."""
        if not isinstance(value, dict):
            raise ValueError("'priors' must map prior names to {distribution: ..., ...}")
        return from_mappings(value)

    def survey_design(self) -> SurveySpec | None:
        """The survey design the models use: none, the cohort's (or the defaults) for
        `survey: true`, or the run's own `survey:` block."""
        if self.survey is False:
            return None
        if self.survey is True:
            return (self.cohort.survey if self.cohort else None) or SurveySpec()
        return self.survey

    @model_validator(mode="after")
    def _one_source(self) -> RunConfig:
        if (self.cohort is None) == (self.table is None):
            raise ValueError("give exactly one data source: 'cohort' (NHANES) or 'table'")
        design = self.survey_design()
        if self.table is not None and design is not None and design.weight == "auto":
            if self.table.weight is None:
                raise ValueError("survey.weight 'auto' needs table.weight: name the weight column")
        if self.cohort is not None and self.model is not None:
            if self.analysis.outcome is None:
                raise ValueError("analysis.outcome is required: which cohort outcome to model")
            known = {
                "outcome": set(self.cohort.outcomes),
                "exposures": {e.name for e in self.cohort.exposures},
                "covariates": set(self.cohort.covariates),
            }
            chosen = {
                "outcome": [self.analysis.outcome],
                "exposures": self.analysis.exposures or [],
                "covariates": self.analysis.covariates or [],
            }
            for key, names in chosen.items():
                unknown = [n for n in names if n not in known[key]]
                if unknown:
                    raise ValueError(
                        f"analysis.{key}: {unknown} not in the cohort (known: {sorted(known[key])})"
                    )
        if self.table is not None and self.analysis != AnalysisSpec():
            raise ValueError("with a 'table' source, name columns under table:, not analysis:")
        return self
