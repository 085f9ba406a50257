"""Loading a run configuration: YAML with `include:` and `--set`, validated against the run
schema with every registered model's `model:` section, priors checked, errors that name the
file and the key (did-you-mean hints for unknown keys).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bayesmetal import priors as prior_lib
from bayesmetal.errors import ConfigError
from bayesmetal.models import registry
from bayesmetal.outcomes import FAMILY
from bayesmetal.run_schema import RunConfig

PATH_KEYS = {("data", "nhanes_dir"), ("table", "path"), ("output", "root")}


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


def _model_name(section: Any) -> Any:
    return section.get("name") if isinstance(section, dict) else None


def switches_model(base: dict[str, Any], model: Any) -> bool:
    """Whether `model` (a `model:` section or a model name) names another model than the
    `model:` section of `base`."""
    old = _model_name(base.get("model"))
    new = _model_name(model) if isinstance(model, dict) else model
    return old is not None and new is not None and new != old


def switch_model(base: dict[str, Any], model: Any) -> dict[str, Any]:
    """`base` with its `model:` section and `priors:` block dropped when `model` names another
    model: a model's keys (BWQS's `direction`, GLM's `kind`) and priors (`weights`, `beta`)
    mean nothing to another model, and an include could not otherwise remove them."""
    if not switches_model(base, model):
        return base
    return {key: value for key, value in base.items() if key not in ("model", "priors")}


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """deep_merge of two config files, except that an `override` whose `model:` names
    another model than `base`'s replaces `base`'s `model:` section and `priors:` block
    instead of merging into them (switch_model)."""
    return deep_merge(switch_model(base, override.get("model")), override)


def load_mapping(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML file, first merging the files listed under its `include:` key (later
    files win, mappings merge; a file that names another model replaces the model section
    and priors: merge_config)."""
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
        merged = merge_config(merged, load_mapping(path.parent / name, (*_seen, path)))
    return merge_config(merged, content)


def _key_sections(
    model: type[BaseModel], section: str = "", seen: frozenset[type] = frozenset()
) -> dict[str, set[str]]:
    """Every key the schema accepts, with the sections that accept it ('' is the top level;
    a model's own section is named 'model (<name>)'), for did-you-mean and where-it-goes hints."""
    if model in seen:
        return {}
    found: dict[str, set[str]] = {}
    for name, info in model.model_fields.items():
        found.setdefault(info.alias or name, set()).add(section)
        for nested in _models_in(info.annotation):
            tag = nested.model_fields.get("name")
            label = name if tag is None or tag.annotation is str else f"{name} ({_literal(tag)})"
            child = f"{section}.{label}" if section else label
            for key, where in _key_sections(nested, child, seen | {model}).items():
                found.setdefault(key, set()).update(where)
    return found


def _literal(field: Any) -> str:
    """The value of a Literal["x"] field (a model spec's name)."""
    return str(field.annotation.__args__[0])


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through unions, Annotated, dict and list)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _models_in(arg)
    origin = getattr(annotation, "__origin__", None)  # Annotated[X, ...] keeps X here
    if origin is not None:
        found += _models_in(origin)
    return found


def format_validation_error(
    exc: ValidationError, source: str, schema: type[BaseModel]
) -> ConfigError:
    """Turn pydantic's errors into one message naming the file, each key and a hint."""
    sections = _key_sections(schema)
    vocabulary = sorted(sections)
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            close = difflib.get_close_matches(key, vocabulary, n=1)
            if close and close[0] == key:  # a real key, of another section or model
                where = ", ".join(sorted(s or "the top level" for s in sections[key])[:4])
                msg = f"key {key!r} is not valid here; it is a key of: {where}"
            else:
                msg = f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
        lines.append(f"  - {loc}: {msg}")
    return ConfigError("\n".join(lines))


def parse_config(
    mapping: dict[str, Any], source: str, partial_priors: frozenset[str] = frozenset()
) -> RunConfig:
    """Validate a mapping against the run schema (with every registered model's section) and
    check its priors, raising ConfigError with the file and keys. The priors named in
    `partial_priors` (those --set wrote) may lack `distribution`: complete_priors."""
    schema = registry.run_schema()
    try:
        mapping = complete_priors({**mapping, "source": source}, schema, partial_priors)
        config = schema.model_validate(mapping)
        if config.model is not None:
            defaults = registry.default_priors(config.model, outcome_family(config))
            resolved = prior_lib.resolve(defaults, config.priors, config.model.name)
            prior_lib.check_values(resolved, prior_lib.from_mappings(defaults))
            model = registry.definition(config.model)
            if model.check_priors is not None:
                model.check_priors(config.model, resolved)
            if config.survey_design() is not None and model.check_survey is not None:
                model.check_survey(config.model, outcome_family(config))
    except ValidationError as exc:
        raise format_validation_error(exc, source, schema) from None
    except ConfigError as exc:  # priors become Prior objects and are checked as they load
        raise ConfigError(f"{source}: {exc}") from None
    return config


def complete_priors(
    mapping: dict[str, Any], schema: type[RunConfig], names: frozenset[str]
) -> dict[str, Any]:
    """A prior of `names` given without `distribution` (`{sigma: 1}`, as `--set
    priors.b1.sigma=1` writes it) completed from the model's default prior of that name: only
    the parameters given change. A config file must name the distribution; a prior left as it
    is gets its error from the validation (also where the rest of the config is invalid)."""
    priors = mapping.get("priors")
    if not isinstance(priors, dict):
        return mapping
    partial = {
        k for k in names if isinstance(priors.get(k), dict) and "distribution" not in priors[k]
    }
    if not partial:
        return mapping
    rest = {**mapping, "priors": {k: v for k, v in priors.items() if k not in partial}}
    try:
        config = schema.model_validate(rest)
        if config.model is None:
            return mapping
        defaults = registry.default_priors(config.model, outcome_family(config))
    except (ValidationError, ConfigError, KeyError):
        return mapping
    unknown = sorted(partial - set(defaults))
    if unknown:
        raise ConfigError(
            f"priors: {', '.join(unknown)} not a prior of model {config.model.name!r}; "
            f"valid names: {', '.join(sorted(defaults))}"
        )
    filled = {
        key: deep_merge(defaults[key], spec)
        if key in partial and isinstance(defaults.get(key), dict)
        else spec
        for key, spec in priors.items()
    }
    return {**mapping, "priors": filled}


def outcome_family(config: RunConfig) -> str:
    """The family of the modelled outcome, known from the config before any data are read."""
    if config.table is not None:
        return config.table.family
    return FAMILY[config.cohort.outcomes[config.analysis.outcome].type]


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected key.path=value")
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from exc


def apply_overrides(mapping: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.path=value` overrides (value parsed as YAML) to a config mapping.

    `--set model.name=X` (or `--set model={name: X, ...}`) naming another model than the
    config's comes first, whatever its place, and starts that model from its defaults: the
    config's other `model:` keys and its `priors:` are dropped (switch_model); the other
    --set (e.g. model.kind=multi, priors.beta.sigma=1) then apply to the new model.
    """
    result = deep_merge({}, mapping)
    parsed = [(item, *_parse_override(item)) for item in overrides]
    first = [p for p in parsed if p[1] in ("model", "model.name")]
    for item, key, value in first + [p for p in parsed if p[1] not in ("model", "model.name")]:
        if key in ("model", "model.name"):
            result = switch_model(result, value)
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


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load, merge includes, apply --set overrides and validate a YAML run configuration."""
    path = Path(path)
    mapping = apply_overrides(load_mapping(path), overrides or [])
    source = str(path) + (f" (with --set {' '.join(overrides)})" if overrides else "")
    keys = [item.partition("=")[0].split(".") for item in overrides or []]
    written = frozenset(k[1] for k in keys if len(k) > 2 and k[0] == "priors")
    return parse_config(mapping, source, written)
