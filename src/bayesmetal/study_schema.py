"""The study schema: the keys a study file adds to a run config (which outcomes, covariate
sets, analyses, variants and survey weightings to cross); what remains of the file (its
`include:`d cohort, `data:`, `sampler:`, `summaries:`) is the run config every fit starts from.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bayesmetal.cohort_schema import Strict

LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _label(value: str, what: str) -> str:
    if not LABEL.match(value):
        raise ValueError(f"{what} {value!r}: use letters, digits, '_', '.' or '-' (a folder name)")
    return value


class AnalysisEntry(Strict):
    """One analysis of the paper: a `model:` section (as in a run config), fitted for each
    outcome and covariate set it names."""

    name: str | None = None  # default: the model's name and kind/direction (glm_multi, ...)
    model: dict[str, Any]
    covariates: list[str] | None = None  # covariate-set names; default: every set
    outcomes: list[str] | None = None  # default: the study's outcomes
    weighting: list[Literal["unweighted", "survey"]] | None = None  # default: the study's
    priors: dict[str, Any] = {}
    sampler: dict[str, Any] = {}  # over the study's sampler settings, key by key

    @field_validator("model")
    @classmethod
    def _named(cls, model: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(model.get("name"), str):
            raise ValueError("needs name: (glm, bwqs, qgcomp, bkmr)")
        return model

    @property
    def label(self) -> str:
        if self.name:
            return _label(self.name, "analysis name")
        extra = self.model.get("kind") or self.model.get("direction")
        return f"{self.model['name']}_{extra}" if isinstance(extra, str) else self.model["name"]


class SensitivityEntry(Strict):
    """A prior-sensitivity variant: one analysis again with other priors (the last covariate
    set, each outcome, unweighted)."""

    name: str
    analysis: str  # an analysis's label
    priors: dict[str, Any] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _label(value, "sensitivity name")


class SubgroupSpec(Strict):
    """Subgroup analyses: each named GLM analysis again with each column as its effect
    modifier (`model.by`: a slope per level and the test of their difference), at the
    analysis's last covariate set, for each of its outcomes and weightings. A plain list is
    `by:` with the default analyses (every GLM analysis of the study)."""

    by: list[str] = Field(min_length=1)
    analyses: list[str] | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain_list(cls, value: Any) -> Any:
        return {"by": value} if isinstance(value, list) else value

    @field_validator("by")
    @classmethod
    def _columns(cls, columns: list[str]) -> list[str]:
        for column in columns:
            _label(column, "subgroup column")
        if len(set(columns)) < len(columns):
            raise ValueError("list each column once")
        return columns


def stratifiable(analysis: AnalysisEntry) -> bool:
    """A GLM (single, multi or quantile: every kind has slopes to stratify)."""
    return analysis.model["name"] == "glm"


class StudySpec(Strict):
    """What a study file says beyond a run config."""

    study: str
    description: str = ""
    outcomes: list[str] = Field(min_length=1)
    exposures: list[str] | None = None  # default: the cohort's
    covariate_sets: dict[str, list[str]] = Field(min_length=1)
    analyses: list[AnalysisEntry] = Field(min_length=1)
    sensitivity: list[SensitivityEntry] = []
    subgroups: SubgroupSpec | None = None
    # [unweighted, survey]: every analysis also with the survey design (the file's survey:
    # block, or the cohort's / NHANES's design)
    weighting: list[Literal["unweighted", "survey"]] = Field(default=["unweighted"], min_length=1)
    describe: bool = True  # Table 1, Table 2, correlations of the cohort

    @field_validator("study")
    @classmethod
    def _study(cls, value: str) -> str:
        return _label(value, "study")

    @field_validator("covariate_sets")
    @classmethod
    def _sets(cls, sets: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in sets:
            _label(name, "covariate set")
        return sets

    @model_validator(mode="after")
    def _references(self) -> StudySpec:
        labels = [a.label for a in self.analyses]
        twice = sorted({x for x in labels if labels.count(x) > 1})
        if twice:
            raise ValueError(f"analyses: {twice} named twice; give each a name:")
        for analysis in self.analyses:
            unknown = [s for s in analysis.covariates or [] if s not in self.covariate_sets]
            if unknown:
                raise ValueError(
                    f"analyses.{analysis.label}.covariates: {unknown} not in covariate_sets "
                    f"({', '.join(self.covariate_sets)})"
                )
            unknown = [w for w in analysis.weighting or [] if w not in self.weighting]
            if unknown:
                raise ValueError(
                    f"analyses.{analysis.label}.weighting: {unknown} not in the study's "
                    f"weighting ({', '.join(self.weighting)})"
                )
            unknown = [o for o in analysis.outcomes or [] if o not in self.outcomes]
            if unknown:
                raise ValueError(f"analyses.{analysis.label}.outcomes: {unknown} not in outcomes")
        for variant in self.sensitivity:
            if variant.analysis not in labels:
                raise ValueError(
                    f"sensitivity.{variant.name}.analysis: {variant.analysis!r} is not an "
                    f"analysis ({', '.join(labels)})"
                )
        self.subgroup_analyses()  # refuses what cannot be stratified
        roles = set(self.outcomes) | set(self.exposures or [])
        clash = [c for c in (self.subgroups.by if self.subgroups else []) if c in roles]
        if clash:
            raise ValueError(f"subgroups.by: {clash} are outcomes or exposures, not modifiers")
        if len(set(self.weighting)) != len(self.weighting):
            raise ValueError("weighting: list each of unweighted / survey once")
        return self

    def subgroup_analyses(self) -> list[str]:
        """The analyses the subgroups stratify: those named (each a GLM), or by default every
        GLM analysis of the study (none without subgroups)."""
        if self.subgroups is None:
            return []
        by_label = {a.label: a for a in self.analyses}
        named = self.subgroups.analyses
        if named is None:
            named = [label for label, a in by_label.items() if stratifiable(a)]
            if not named:
                raise ValueError("subgroups: the study has no GLM analysis to stratify; add one")
        for label in named:
            if label not in by_label:
                raise ValueError(
                    f"subgroups.analyses: {label!r} is not an analysis ({', '.join(by_label)})"
                )
            if not stratifiable(by_label[label]):
                raise ValueError(
                    f"subgroups.analyses: {label!r} is not a GLM (subgroups stratify a GLM's "
                    "slopes)"
                )
        return named
