"""Run configuration: strict pydantic schema, YAML loading with includes, clear errors.

Every error names the file and the key; unknown keys get a did-you-mean hint.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bayesmetal.errors import ConfigError

# resolved relative to the YAML file that sets them
PATH_KEYS = {("data", "nhanes_dir"), ("table", "path"), ("output", "root")}


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ----------------------------------------------------------------------------- cohort


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
    group_by: str | None = None

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
    family: Literal["gaussian", "bernoulli"]
    exposures: list[str] = Field(min_length=1)
    covariates: list[str] = []
    categorical: list[str] = []  # covariates to dummy-code even if stored as numbers
    weight: str | None = None
    group: str | None = None
    id: str | None = None
    encoding: str | None = None  # of a CSV; default: UTF-8, else Windows-1252 (and said so)

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


class GlmSpec(Strict):
    """Bayesian GLM: one exposure at a time, all together, or in quantiles with a trend."""

    name: Literal["glm"]
    kind: Literal["single", "multi", "quantile"] = "multi"
    quantiles: int = Field(default=4, ge=2, le=10)


class BwqsSpec(Strict):
    """Bayesian WQS: Dirichlet weights over quantile scores (Colicino et al. 2020)."""

    name: Literal["bwqs"]
    quantiles: int = Field(default=4, ge=2, le=10)
    direction: Literal["positive", "negative", "free"] = "free"
    two_index: bool = False
    group: str | None = None  # hierarchical: b1 varies by this covariate

    @model_validator(mode="after")
    def _compatible(self) -> BwqsSpec:
        if self.two_index and self.direction != "free":
            raise ValueError("two_index fixes the directions itself; leave direction 'free'")
        if self.two_index and self.group is not None:
            raise ValueError("two_index and group (hierarchical) cannot be combined")
        return self


class BkmrSpec(Strict):
    """BKMR: y = h(z) + X beta + e, h a Gaussian process, spike-and-slab selection of r_m."""

    name: Literal["bkmr"]
    selection: Literal["component", "hierarchical", "none"] = "component"
    groups: dict[str, list[str]] | None = None  # hierarchical: group name -> exposures
    knots: int | None = Field(default=None, ge=5)  # Gaussian predictive process for large n
    random_intercept: str | None = None  # column whose levels share a random intercept
    sampler: Literal["gibbs", "pymc"] = "gibbs"  # fast path, or PyMC's compound step (reference)
    draws_for_h: int = Field(default=200, ge=10)  # posterior draws used for h summaries
    ngrid: int = Field(default=30, ge=5, le=200)  # grid points of exposure-response curves

    @model_validator(mode="after")
    def _compatible(self) -> BkmrSpec:
        if (self.selection == "hierarchical") != (self.groups is not None):
            raise ValueError("'groups' goes with selection: hierarchical, and it needs them")
        if self.sampler == "pymc" and self.knots is not None:
            raise ValueError("knots need sampler: gibbs (the PyMC reference model is exact)")
        return self


ModelSpec = Annotated[GlmSpec | BwqsSpec | BkmrSpec, Field(discriminator="name")]


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


class RunConfig(Strict):
    """A whole analysis file: data, cohort or table, analysis, model, priors, sampler."""

    data: DataSpec = DataSpec()
    cohort: CohortSpec | None = None
    table: TableSource | None = None
    analysis: AnalysisSpec = AnalysisSpec()
    model: ModelSpec | None = None
    priors: dict[str, dict[str, Any]] = {}
    sampler: SamplerSpec = SamplerSpec()
    summaries: SummarySpec = SummarySpec()
    output: OutputSpec = OutputSpec()
    source: str = ""  # set by load_config: the file the config came from

    @model_validator(mode="after")
    def _one_source(self) -> RunConfig:
        if (self.cohort is None) == (self.table is None):
            raise ValueError("give exactly one data source: 'cohort' (NHANES) or 'table'")
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


# ----------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#x} at offset {exc.start}); "
            "save the config as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys")
    for section, key in PATH_KEYS:
        value = (
            content.get(section, {}).get(key) if isinstance(content.get(section), dict) else None
        )
        if isinstance(value, str) and not Path(value).is_absolute():
            content[section][key] = str((path.parent / value).resolve())
    return content


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge mappings recursively; values in `override` win."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_mapping(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML file, first merging the files listed under its `include:` key."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: include cycle through {[str(p) for p in _seen]}")
    content = _read_yaml(path)
    includes = content.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list):
        raise ConfigError(f"{path}: 'include' must be a file name or a list of them")
    merged: dict[str, Any] = {}
    for name in includes:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{path}: 'include' entries must be file names; got {name!r}")
        merged = deep_merge(merged, load_mapping(path.parent / name, (*_seen, path)))
    return deep_merge(merged, content)


def _field_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every key any section of the schema accepts, for did-you-mean hints."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        names |= _nested_names(info.annotation, seen)
    return names


def _nested_names(annotation: Any, seen: set[type]) -> set[str]:
    names: set[str] = set()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _field_names(annotation, seen)
    for arg in getattr(annotation, "__args__", ()) or ():
        names |= _nested_names(arg, seen)
    origin = getattr(annotation, "__origin__", None)  # Annotated[X, ...] keeps X here
    if origin is not None:
        names |= _nested_names(origin, seen)
    return names


def format_validation_error(
    exc: ValidationError, source: str, schema: type[BaseModel]
) -> ConfigError:
    """Turn pydantic's errors into one message naming the file, each key and a hint."""
    vocabulary = sorted(_field_names(schema))
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            close = difflib.get_close_matches(key, vocabulary, n=1)
            if close and close[0] == key:  # a real key, of another section or model
                msg = f"key {key!r} is not valid here (it belongs to another section or model)"
            else:
                msg = f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        lines.append(f"  - {loc}: {msg}")
    return ConfigError("\n".join(lines))


def parse_config(mapping: dict[str, Any], source: str, schema: type[BaseModel] = RunConfig) -> Any:
    """Validate a mapping against the schema, raising ConfigError with file and keys."""
    try:
        return schema.model_validate({**mapping, "source": source})
    except ValidationError as exc:
        raise format_validation_error(exc, source, schema) from None


def apply_overrides(mapping: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.path=value` overrides (value parsed as YAML) to a config mapping."""
    result = deep_merge({}, mapping)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from exc
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def load_config(
    path: str | Path, overrides: list[str] | None = None, schema: type[BaseModel] = RunConfig
) -> Any:
    """Load, merge includes, apply --set overrides and validate a YAML run configuration."""
    path = Path(path)
    mapping = apply_overrides(load_mapping(path), overrides or [])
    source = str(path) + (f" (with --set {' '.join(overrides)})" if overrides else "")
    return parse_config(mapping, source, schema)
