"""A study: one file that crosses outcomes, covariate sets, analyses, prior variants and survey
weightings into the fits of a paper, each an ordinary run config.

Every fit is written out as a complete run config (`configs/<label>.yaml` in the study folder:
what `fit.py` would read, so any fit can be rerun by hand) and runs into
`fits/<label>-<hash>/`, where the hash is that of its config. A fit whose folder is complete is
reused, so an interrupted study resumes where it stopped and a changed analysis is refitted
alone; `describe-<hash>/` holds the cohort's descriptive tables the same way.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bayesmetal.config import (
    PATH_KEYS,
    apply_overrides,
    deep_merge,
    load_mapping,
    merge_config,
    parse_config,
)
from bayesmetal.errors import ConfigError
from bayesmetal.run_schema import RunConfig
from bayesmetal.runs import FAILURE_FILE, is_run_folder, write_file_atomically
from bayesmetal.study_schema import AnalysisEntry, StudySpec

STUDY_KEYS = tuple(StudySpec.model_fields)
# settings that change how a fit runs, not what it finds: left out of its hash
UNHASHED = (("sampler", "progressbar"), ("sampler", "cores"), ("output",))
DEFAULT_ROOT = "studies"


@dataclass(frozen=True)
class StudyFit:
    """One fit of the study: which analysis, outcome, covariate set, variant and weighting,
    its complete run config and that config's hash."""

    label: str
    analysis: str
    model: str
    outcome: str
    covariate_set: str
    survey: bool
    variant: str  # "main", or a sensitivity variant's name
    mapping: dict[str, Any]  # the run config, includes merged
    config: RunConfig
    hash: str  # fit_hash(config)
    subgroup: str = ""  # the effect modifier of a subgroup fit (its model.by), else ""

    @property
    def folder_name(self) -> str:
        return f"{self.label}-{self.hash}"

    @property
    def twin_label(self) -> str:
        """The label of the same fit without the survey design."""
        return self.label.removesuffix(".survey")


@dataclass(frozen=True)
class Study:
    """A loaded study: its spec, the fits it crosses into, and where it writes."""

    spec: StudySpec
    source: Path
    base: dict[str, Any]  # the run config every fit starts from
    fits: list[StudyFit]
    folder: Path

    @property
    def describe_mapping(self) -> dict[str, Any] | None:
        """The run config describe.py reads (the cohort), or None without a cohort."""
        if not self.spec.describe or "cohort" not in self.base:
            return None
        keys = ("data", "cohort", "survey")
        mapping = {k: v for k, v in self.base.items() if k in keys}
        if "survey" in self.spec.weighting:
            mapping["survey"] = self.base.get("survey") or True
        return mapping

    @property
    def describe_folder(self) -> Path:
        return self.folder / f"describe-{_digest({'describe': self.describe_mapping})}"

    @property
    def describe_done(self) -> bool:
        return is_run_folder(self.describe_folder)

    def fit_folder(self, fit: StudyFit) -> Path:
        return self.folder / "fits" / fit.folder_name

    def done(self, fit: StudyFit) -> bool:
        """Whether the fit's folder is complete, summaries included (fit.py renames it into
        place at the end; a folder whose summaries failed holds the posterior only)."""
        folder = self.fit_folder(fit)
        return is_run_folder(folder) and not (folder / FAILURE_FILE).exists()


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 of bayesmetal's own source files: a fit made by other code is not reused."""
    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")) + sorted(package.glob("*.json")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _file_digest(path: str | None) -> str | None:
    """A user's table's content (NHANES files are pinned by the CDC catalogue's checksums)."""
    if not path or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _digest(content: dict[str, Any]) -> str:
    text = json.dumps({**content, "code": code_fingerprint()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def fit_hash(config: RunConfig) -> str:
    """12 hex digits of SHA-256 over everything that decides the fit's result: the validated
    config with its defaults filled in (less UNHASHED and where it was read from), a user
    table's content and bayesmetal's source code."""
    kept = config.model_dump(mode="json", exclude={"source"})
    for path in UNHASHED:
        section = kept
        for key in path[:-1]:
            section = section.get(key) or {}
        if isinstance(section, dict):
            section.pop(path[-1], None)
    table = config.table.path if config.table is not None else None
    return _digest({"config": kept, "table": _file_digest(table)})


def _split(mapping: dict[str, Any], source: Path) -> tuple[StudySpec, dict[str, Any]]:
    """The study's own keys, validated, and the run config the rest makes."""
    own = {k: mapping.pop(k) for k in STUDY_KEYS if k in mapping}
    try:
        spec = StudySpec.model_validate(own)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "(top level)"
            problems.append(f"  {where}: {error['msg']}")
        raise ConfigError(f"{source}: not a valid study:\n" + "\n".join(problems)) from None
    return spec, mapping


def load_study(path: str | Path, overrides: list[str] | None = None) -> Study:
    """Read a study file (its `include:`s merged, `--set` overrides applied to the shared run
    settings), check every fit's run config, and place the study folder (output.root/study)."""
    source = Path(path)
    mapping = apply_overrides(load_mapping(source), overrides or [])
    spec, base = _split(mapping, source)
    root = Path((base.get("output") or {}).get("root") or DEFAULT_ROOT)
    fits: list[StudyFit] = []
    for analysis in spec.analyses:
        for outcome in analysis.outcomes or spec.outcomes:
            for covariate_set in analysis.covariates or list(spec.covariate_sets):
                for survey in (w == "survey" for w in analysis.weighting or spec.weighting):
                    fits.append(_fit(source, base, spec, analysis, outcome, covariate_set, survey))
    by_label = {a.label: a for a in spec.analyses}
    for label in spec.subgroup_analyses():
        analysis = by_label[label]
        covariate_set = (analysis.covariates or list(spec.covariate_sets))[-1]
        for outcome in analysis.outcomes or spec.outcomes:
            for survey in (w == "survey" for w in analysis.weighting or spec.weighting):
                for column in spec.subgroups.by if spec.subgroups else []:
                    fits.append(
                        _fit(
                            source,
                            base,
                            spec,
                            analysis,
                            outcome,
                            covariate_set,
                            survey,
                            subgroup=column,
                        )
                    )
    for variant in spec.sensitivity:  # the analysis's last (fullest) covariate set
        analysis = by_label[variant.analysis]
        covariate_set = (analysis.covariates or list(spec.covariate_sets))[-1]
        for outcome in analysis.outcomes or spec.outcomes:
            fits.append(_fit(source, base, spec, analysis, outcome, covariate_set, False, variant))
    labels = [f.label for f in fits]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ConfigError(f"{source}: fits {twice} are labelled twice; rename the variant")
    return Study(spec, source, base, fits, root / spec.study)


def _fit(
    source: Path,
    base: dict[str, Any],
    spec: StudySpec,
    analysis: AnalysisEntry,
    outcome: str,
    covariate_set: str,
    survey: bool,
    variant: Any = None,
    subgroup: str = "",
) -> StudyFit:
    """One fit's run config: the shared one with this analysis's model (stratified by the
    subgroup column, if any), roles, priors and sampler settings, the weighting, and PSIS-LOO
    on."""
    roles: dict[str, Any] = {"outcome": outcome, "covariates": spec.covariate_sets[covariate_set]}
    if spec.exposures is not None:
        roles["exposures"] = spec.exposures
    # a cohort's roles go under analysis:, a user's table names its columns under table:
    section = "table" if base.get("table") else "analysis"
    if subgroup and section == "table" and subgroup not in roles["covariates"]:
        roles["group"] = subgroup  # a table loads the columns it names
    priors = {**analysis.priors, **(variant.priors if variant is not None else {})}
    model = {**analysis.model, "by": subgroup} if subgroup else analysis.model
    override: dict[str, Any] = {section: roles, "model": model, "priors": priors}
    mapping = merge_config({k: v for k, v in base.items() if k != "model"}, override)
    if analysis.sampler:
        mapping["sampler"] = deep_merge(dict(mapping.get("sampler") or {}), analysis.sampler)
    # every fit's PSIS-LOO, for the study's model comparison
    mapping["summaries"] = {**(mapping.get("summaries") or {}), "loo": True}
    mapping["survey"] = (base.get("survey") or True) if survey else False
    parts = [analysis.label, outcome, covariate_set]
    parts += [f"by_{subgroup}"] if subgroup else []
    parts += [variant.name] if variant is not None else []
    parts += ["survey"] if survey else []
    label = ".".join(parts)
    where = f"{source} (analysis {analysis.label}, {label})"
    config = parse_config(mapping, where)
    return StudyFit(
        label,
        analysis.label,
        str(analysis.model["name"]),
        outcome,
        covariate_set,
        survey,
        variant.name if variant is not None else "main",
        mapping,
        config,
        fit_hash(config),
        subgroup,
    )


def write_config(mapping: dict[str, Any], path: Path) -> None:
    """A run config as YAML, written whole or not at all."""
    write_file_atomically(path, yaml.safe_dump(mapping, sort_keys=False))


def fit_config_path(study: Study, fit: StudyFit) -> Path:
    return study.folder / "configs" / f"{fit.label}.yaml"


def absolute_paths(mapping: dict[str, Any]) -> dict[str, Any]:
    """The run config with its path keys absolute (a generated file lives elsewhere)."""
    out = json.loads(json.dumps(mapping, default=str))
    for section, key in PATH_KEYS:
        value = (out.get(section) or {}).get(key) if isinstance(out.get(section), dict) else None
        if isinstance(value, str):
            out[section][key] = str(Path(value).absolute())
    return out
