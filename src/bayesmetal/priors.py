"""Priors are data: YAML mappings {distribution, parameters} turned into pymc-extras Priors.

A model declares its defaults in the same format; a config's `priors:` block replaces any of
them by name. An unknown name is an error listing the valid ones, and every resolved prior is
saved with the run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
from pymc_extras.prior import Prior

from bayesmetal.errors import ConfigError

OPTIONS = {"distribution", "centered", "transform"}


def resolve(
    defaults: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]], model: str
) -> dict[str, dict[str, Any]]:
    """The model's default priors with the config's replacements applied."""
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ConfigError(
            f"priors: {', '.join(unknown)} not a prior of model {model!r}; "
            f"valid names: {', '.join(sorted(defaults))}"
        )
    resolved = {key: dict(value) for key, value in defaults.items()}
    for key, spec in overrides.items():
        if not isinstance(spec, dict) or "distribution" not in spec:
            raise ConfigError(f"priors.{key}: give a mapping with 'distribution' and parameters")
        resolved[key] = dict(spec)
    return resolved


def _to_prior(spec: dict[str, Any], key: str, dims: tuple[str, ...], size: int | None) -> Prior:
    params = {}
    for name, value in spec.items():
        if name in OPTIONS:
            continue
        if isinstance(value, dict):
            params[name] = _to_prior(value, f"{key}.{name}", (), None)
        else:
            params[name] = np.asarray(value, dtype=float) if isinstance(value, list) else value
    if spec["distribution"] == "Dirichlet" and size is not None:
        alpha = np.asarray(params.get("a", 1.0), dtype=float)
        if alpha.ndim == 0:
            params["a"] = np.full(size, float(alpha))
        elif alpha.shape != (size,):
            raise ConfigError(f"priors.{key}.a: needs 1 or {size} values, got {alpha.size}")
    extra = {option: spec[option] for option in ("centered", "transform") if option in spec}
    return Prior(spec["distribution"], dims=dims or None, **extra, **params)


def create(
    specs: dict[str, dict[str, Any]],
    key: str,
    name: str | None = None,
    dims: tuple[str, ...] = (),
    size: int | None = None,
):
    """Create the model variable for prior `key` (inside a pm.Model context).

    Errors from PyMC (unknown distribution, wrong parameter) name the config key.
    """
    try:
        prior = _to_prior(specs[key], key, dims, size)
        return prior.create_variable(name or key)
    except ConfigError:
        raise
    except Exception as exc:  # PyMC/pymc-extras raise several types for bad parameters
        raise ConfigError(f"priors.{key} = {specs[key]}: {exc}") from exc


def _declare(specs: dict[str, dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    """Each prior as a variable of the current model (Dirichlet sized by its `a`)."""
    made = {}
    for key, spec in specs.items():
        size = len(spec["a"]) if isinstance(spec.get("a"), list) else 2
        dirichlet = spec.get("distribution") == "Dirichlet"
        made[key] = create(specs, key, prefix + key, size=size if dirichlet else None)
    return made


def check_values(
    specs: dict[str, dict[str, Any]], defaults: dict[str, dict[str, Any]] | None = None
) -> None:
    """Refuse priors the model cannot use, naming the key, before any data are sampled.

    Parameters outside their range (a negative sd, Uniform with lower > upper) give a log-density
    that is not finite at PyMC's initial point, which NUTS would report only at sampling. A
    prior replacing a positive default (a scale such as sigma) must be positive too: Normal for
    sigma would propose negative scales. One throwaway model; draws only for replaced priors.
    """
    replaced = {k: v for k, v in specs.items() if defaults and defaults.get(k) != v}
    with pm.Model() as model:
        made = _declare(specs)
        reference = _declare({k: defaults[k] for k in replaced}, "default_") if replaced else {}
    try:
        logps = model.point_logps()
    except Exception as exc:  # PyMC's parameter checks raise several types
        raise ConfigError(f"priors: invalid parameter values ({exc})") from exc
    for name, value in logps.items():
        if not np.isfinite(value):
            key = next(
                (k for k in sorted(specs, key=len, reverse=True) if name.startswith(k)), name
            )
            raise ConfigError(
                f"priors.{key} = {specs.get(key)}: parameters outside their range "
                f"(log-density of {name} at its initial value is {value}); "
                "scales, shapes and rates must be positive, lower < upper"
            )
    if replaced:
        keys = list(replaced)
        draws = pm.draw([made[k] for k in keys] + [reference[k] for k in keys], 200, random_seed=1)
        for key, user, default in zip(keys, draws[: len(keys)], draws[len(keys) :], strict=True):
            if np.all(default > 0) and not np.all(user > 0):
                raise ConfigError(
                    f"priors.{key} = {specs[key]}: {key} must be positive (its default is "
                    f"{defaults[key]['distribution']}), but this prior puts mass at or below 0; "
                    "use a positive distribution such as HalfNormal, Gamma or LogNormal"
                )
