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


def parse_config(mapping: dict[str, Any], source: str) -> RunConfig:
    """Validate a mapping against the run schema (with every registered model's section) and
    check its priors, raising ConfigError with the file and keys."""
    schema = registry.run_schema()
    try:
        config = schema.model_validate({**mapping, "source": source})
        if config.model is not None:
            defaults = registry.default_priors(config.model, outcome_family(config))
            resolved = prior_lib.resolve(defaults, config.priors, config.model.name)
            prior_lib.check_values(resolved, prior_lib.from_mappings(defaults))
            model = registry.definition(config.model)
            if model.check_priors is not None:
                model.check_priors(config.model, resolved)
    except ValidationError as exc:
        raise format_validation_error(exc, source, schema) from None
    except ConfigError as exc:  # priors become Prior objects and are checked as they load
        raise ConfigError(f"{source}: {exc}") from None
    return config


def outcome_family(config: RunConfig) -> str:
    """The family of the modelled outcome, known from the config before any data are read."""
    if config.table is not None:
        return config.table.family
    return FAMILY[config.cohort.outcomes[config.analysis.outcome].type]


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


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load, merge includes, apply --set overrides and validate a YAML run configuration."""
    path = Path(path)
    mapping = apply_overrides(load_mapping(path), overrides or [])
    source = str(path) + (f" (with --set {' '.join(overrides)})" if overrides else "")
    return parse_config(mapping, source)
