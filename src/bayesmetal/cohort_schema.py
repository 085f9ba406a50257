"""The cohort schema: which NHANES cycles and files, who is included, and how exposures,
covariates and outcomes are derived (configs/cohorts/*.yaml).

`Strict` is the base of every config section, here and in `run_schema`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class IncludeRule(Strict):
    """Keep persons whose `variable` lies in [between] or in the listed codes."""

    name: str
    variable: str
    between: tuple[float, float] | None = None
    isin: list[float] | None = Field(default=None, alias="in")

    @model_validator(mode="after")
    def _one_condition(self) -> IncludeRule:
        if (self.between is None) == (self.isin is None):
            raise ValueError("give exactly one of 'between' or 'in'")
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"'between' lower bound exceeds upper: {list(self.between)}")
        return self


class ExposureSpec(Strict):
    """A measured concentration: short name, NHANES variable and its LOD comment code."""

    name: str
    variable: str
    lod_flag: str | None = None


class Covariate(Strict):
    """Fields shared by every derived covariate."""

    required: bool = True
    missing_level: str | None = None  # if set, missing values become this level, counted


class NumericCov(Covariate):
    derive: Literal["numeric"]
    variable: str
    missing_codes: list[float] = []


class RecodeCov(Covariate):
    derive: Literal["recode"]
    variable: str
    levels: dict[int, str]

    @model_validator(mode="after")
    def _distinct(self) -> RecodeCov:
        if not self.levels:
            raise ValueError("'levels' must map at least one code to a label")
        return self


Closed = Literal["left", "right"]


def _check_cut(breaks: list[float], labels: list[str], closed: Closed | list[Closed]) -> None:
    if sorted(breaks) != list(breaks) or len(set(breaks)) != len(breaks):
        raise ValueError(f"'breaks' must be strictly increasing: {breaks}")
    if len(labels) != len(breaks) + 1:
        raise ValueError(f"{len(breaks)} breaks need {len(breaks) + 1} labels, got {len(labels)}")
    if isinstance(closed, list) and len(closed) != len(breaks):
        raise ValueError(f"'closed' as a list needs one entry per break ({len(breaks)})")


class CutCov(Covariate):
    """A number cut at breaks. closed='left': a value equal to a break goes to the upper
    category ([a, b)); 'right': to the lower one ((a, b]); or one entry per break."""

    derive: Literal["cut"]
    variable: str
    breaks: list[float]
    labels: list[str]
    closed: Closed | list[Closed] = "left"
    missing_codes: list[float] = []

    @model_validator(mode="after")
    def _shape(self) -> CutCov:
        _check_cut(self.breaks, self.labels, self.closed)
        return self


class ActivityPart(Strict):
    """One activity question: days per week x minutes per day, gated by its yes/no item.

    NHANES skips the days/minutes items when the gate question is answered 'no' (2);
    those persons contribute zero minutes, not a missing value.
    """

    asked: str | None = None
    days: str
    minutes: str


class MetMinutesCov(Covariate):
    """Weekly MET-minutes from PAQ days x minutes, cut into activity levels."""

    derive: Literal["met_minutes"]
    vigorous: list[ActivityPart] = []
    moderate: list[ActivityPart] = []
    walking: list[ActivityPart] = []
    met: dict[Literal["vigorous", "moderate", "walking"], float] = {
        "vigorous": 8.0,
        "moderate": 4.0,
        "walking": 4.0,
    }
    breaks: list[float] = [500, 1000]
    labels: list[str] = ["low (<500)", "moderate (500-1000)", "high (>1000)"]
    closed: Closed | list[Closed] = ["left", "right"]  # 500 and 1000 are both 'moderate'
    missing_codes: list[float] = [77, 99, 7777, 9999]

    @model_validator(mode="after")
    def _shape(self) -> MetMinutesCov:
        if not (self.vigorous or self.moderate or self.walking):
            raise ValueError("give at least one of vigorous, moderate, walking")
        _check_cut(self.breaks, self.labels, self.closed)
        return self


class SmokingCov(Covariate):
    """Never / former / current smoker from 'ever smoked 100' and 'smoke now'."""

    derive: Literal["smoking_status"]
    ever: str = "SMQ020"
    now: str = "SMQ040"


CovariateSpec = Annotated[
    NumericCov | RecodeCov | CutCov | MetMinutesCov | SmokingCov, Field(discriminator="derive")
]


class Reference(Strict):
    """Young-adult reference BMD for a T-score: mean and SD in g/cm2."""

    mean: float = Field(gt=0)
    sd: float = Field(gt=0)


class BmdOutcome(Strict):
    type: Literal["bmd"]
    variable: str
    required: bool = True


class TScoreOutcome(Strict):
    """(BMD - reference mean) / reference SD; references by sex or one for everyone."""

    type: Literal["tscore"]
    variable: str
    reference: Reference | None = None
    by_sex: dict[Literal["male", "female"], Reference] | None = None
    sex_variable: str = "RIAGENDR"
    required: bool = True

    @model_validator(mode="after")
    def _one_reference(self) -> TScoreOutcome:
        if (self.reference is None) == (self.by_sex is None):
            raise ValueError("give exactly one of 'reference' or 'by_sex'")
        if self.by_sex is not None and set(self.by_sex) != {"male", "female"}:
            raise ValueError("'by_sex' needs references for both 'male' and 'female'")
        return self


class ThresholdOutcome(Strict):
    """Binary: 1 when any (or all) of the named outcomes is at or below the threshold."""

    type: Literal["threshold"]
    of: list[str] = Field(min_length=1)
    at_or_below: float
    rule: Literal["any", "all"] = "any"
    required: bool = True


class BoneStatusOutcome(Strict):
    """normal / osteopenia / osteoporosis from the lowest T-score of the named outcomes."""

    type: Literal["bone_status"]
    of: list[str] = Field(min_length=1)
    osteoporosis_at_or_below: float = -2.5
    osteopenia_below: float = -1.0
    required: bool = True


class SelfReportOutcome(Strict):
    """Binary from a yes/no question, e.g. OSQ060 'ever told had osteoporosis'."""

    type: Literal["self_report"]
    variable: str
    yes_codes: list[int] = [1]
    no_codes: list[int] = [2]
    required: bool = True


OutcomeSpec = Annotated[
    BmdOutcome | TScoreOutcome | ThresholdOutcome | BoneStatusOutcome | SelfReportOutcome,
    Field(discriminator="type"),
]


class WeightSpec(Strict):
    """Survey weight: the first candidate present in each cycle's files is used."""

    candidates: list[str] = ["WTSA2YR", "WTSH2YR", "WTMEC2YR", "WTMECPRP"]


class SurveySpec(Strict):
    """NHANES's complex survey design: weight ('auto': the weight the cohort chose from
    `weight.candidates`, pooled across cycles), strata and PSUs; `nest` numbers PSUs within
    strata (NHANES's SDMVPSU is 1, 2 in every stratum); `intervals`: 't' gives the adjusted
    posterior the tails of a t on the design degrees of freedom (PSUs - strata), as
    design-based intervals use, 'normal' the large-sample sandwich alone."""

    weight: str = "auto"
    strata: str = "SDMVSTRA"
    psu: str = "SDMVPSU"
    nest: bool = True
    intervals: Literal["t", "normal"] = "t"


def survey_switch(value: Any) -> Any:
    """`survey: false` (or absent) is no design; `survey: true` the defaults."""
    if value is False:
        return None
    if value is True:
        return SurveySpec()
    return value


class CohortSpec(Strict):
    """Who is analysed: cycles, files, inclusion, exposures, covariates and outcomes."""

    name: str
    description: str = ""
    cycles: list[str] = Field(min_length=1)
    components: list[str] = Field(min_length=1)
    include: list[IncludeRule] = []
    exposures: list[ExposureSpec] = Field(min_length=1)
    covariates: dict[str, CovariateSpec] = {}
    outcomes: dict[str, OutcomeSpec] = Field(min_length=1)
    weight: WeightSpec = WeightSpec()
    survey: SurveySpec | None = None  # the design runs use with survey: true
    group_by: str | None = None

    _survey_switch = field_validator("survey", mode="before")(survey_switch)

    @model_validator(mode="after")
    def _names(self) -> CohortSpec:
        names = [e.name for e in self.exposures]
        if len(set(names)) != len(names):
            raise ValueError(f"exposure names must be unique: {names}")
        clash = set(names) & (set(self.covariates) | set(self.outcomes))
        if clash:
            raise ValueError(f"names used twice (exposure and covariate/outcome): {clash}")
        for name, spec in self.outcomes.items():
            for ref in getattr(spec, "of", []):
                if ref not in self.outcomes or list(self.outcomes).index(ref) >= list(
                    self.outcomes
                ).index(name):
                    raise ValueError(
                        f"outcome {name!r} refers to {ref!r}, which must be an outcome "
                        "declared before it"
                    )
        if self.group_by is not None and self.group_by not in {**self.covariates, **self.outcomes}:
            raise ValueError(f"group_by {self.group_by!r} is not a covariate or outcome")
        for name, cov in self.covariates.items():
            if cov.missing_level is not None and cov.derive == "numeric":
                raise ValueError(f"covariate {name!r}: missing_level needs a categorical derive")
        return self
