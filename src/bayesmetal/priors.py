"""Priors as pymc-extras `Prior` objects, written in YAML as {distribution, parameters}.

A config's `priors:` block becomes `Prior`s when the config loads (an unknown distribution,
parameter or transform is an error naming the key then); a model declares its defaults in the
same YAML form, and `resolve` replaces them by name. `as_mappings` writes them back to YAML for
the run's provenance, so a saved run reloads to the same objects.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
from pymc_extras.prior import Prior

from bayesmetal.errors import ConfigError

OPTIONS = ("centered", "transform")  # keys of a prior mapping that are not parameters
Priors = dict[str, Prior]


def from_mapping(spec: Any, key: str) -> Prior:
    """A `Prior` from {distribution: ..., <parameter>: value or nested prior, centered,
    transform}; every error names `priors.<key>`."""
    if isinstance(spec, Prior):
        return spec
    if not isinstance(spec, Mapping) or "distribution" not in spec:
        raise ConfigError(
            f"priors.{key}: give a mapping with 'distribution' and its parameters, "
            f"e.g. {{distribution: Normal, mu: 0, sigma: 1}}; got {spec!r}"
        )
    if "dims" in spec:
        raise ConfigError(
            f"priors.{key}.dims: a prior's dims are the model's (one per exposure, "
            "covariate, ...); leave them out"
        )
    params = {}
    for name, value in spec.items():
        if name == "distribution" or name in OPTIONS:
            continue
        if isinstance(value, Mapping):
            params[name] = from_mapping(value, f"{key}.{name}")
        elif isinstance(value, list):
            params[name] = np.asarray(value, dtype=float)
        else:
            params[name] = value
    options = {option: spec[option] for option in OPTIONS if option in spec}
    try:
        return Prior(spec["distribution"], **options, **params)
    except Exception as exc:  # pymc-extras raises several types for a bad name or parameter
        hint = did_you_mean(spec["distribution"])
        raise ConfigError(f"priors.{key} = {_plain(spec)}: {exc}{hint}") from None


# in pymc.distributions.__all__ but not distributions a prior can name
NOT_DISTRIBUTIONS = {"Continuous", "Discrete", "Distribution", "SymbolicRandomVariable"}


def did_you_mean(name: Any) -> str:
    """' (did you mean 'Gamma'?)' for a distribution name PyMC lacks, from the names PyMC
    offers (any case: 'halfnormal' -> 'HalfNormal'); '' where PyMC has it or nothing is close."""
    if not isinstance(name, str) or hasattr(pm, name):
        return ""
    offered = {n.lower(): n for n in pm.distributions.__all__ if n not in NOT_DISTRIBUTIONS}
    close = difflib.get_close_matches(name.lower(), list(offered), n=1, cutoff=0.6)
    match = offered.get(name.lower()) or (offered[close[0]] if close else None)
    return f" (did you mean {match!r}?)" if match else ""


def to_mapping(prior: Prior) -> dict[str, Any]:
    """The YAML form of a prior (inverse of `from_mapping`)."""
    mapping: dict[str, Any] = {"distribution": prior.distribution}
    for name, value in prior.parameters.items():
        if isinstance(value, Prior):
            mapping[name] = to_mapping(value)
        elif isinstance(value, np.ndarray):
            mapping[name] = value.tolist() if value.ndim else value.item()
        else:
            mapping[name] = value
    if not prior.centered:
        mapping["centered"] = False
    if prior.transform is not None:
        mapping["transform"] = prior.transform
    return mapping


def from_mappings(specs: Mapping[str, Any]) -> Priors:
    """Each entry of a `priors:` block (or a model's defaults) as a `Prior`."""
    return {key: from_mapping(spec, key) for key, spec in specs.items()}


def as_mappings(priors: Mapping[str, Prior]) -> dict[str, dict[str, Any]]:
    """Priors in YAML form, for provenance and reports."""
    return {key: to_mapping(prior) for key, prior in priors.items()}


def _plain(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_plain(v) if isinstance(v, Mapping) else v) for k, v in spec.items()}


def resolve(defaults: Mapping[str, Any], overrides: Mapping[str, Any], model: str) -> Priors:
    """The model's default priors with the config's replacements applied, by name."""
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ConfigError(
            f"priors: {', '.join(unknown)} not a prior of model {model!r}; "
            f"valid names: {', '.join(sorted(defaults))}"
        )
    return from_mappings({**defaults, **overrides})


def _shaped(prior: Prior, key: str, dims: tuple[str, ...], size: int | None) -> Prior:
    """The prior with the variable's dims; a Dirichlet's scalar `a` repeated `size` times."""
    params = dict(prior.parameters)
    if prior.distribution == "Dirichlet" and size is not None:
        alpha = np.asarray(params.get("a", 1.0), dtype=float)
        if alpha.ndim == 0:
            params["a"] = np.full(size, float(alpha))
        elif alpha.shape != (size,):
            raise ConfigError(f"priors.{key}.a: needs 1 or {size} values, got {alpha.size}")
    options = {"centered": prior.centered, "transform": prior.transform}
    return Prior(prior.distribution, dims=dims or None, **options, **params)


def create(
    priors: Mapping[str, Any],
    key: str,
    name: str | None = None,
    dims: tuple[str, ...] = (),
    size: int | None = None,
):
    """Create the model variable for prior `key` (a `Prior`, or its YAML mapping) inside a
    pm.Model context; errors from PyMC (a transform it does not know, parameters of the wrong
    shape) name the config key."""
    prior = from_mapping(priors[key], key)
    try:
        return _shaped(prior, key, dims, size).create_variable(name or key)
    except ConfigError:
        raise
    except Exception as exc:  # PyMC/pymc-extras raise several types for bad parameters
        raise ConfigError(f"priors.{key} = {to_mapping(prior)}: {exc}") from exc


def _declare(priors: Mapping[str, Prior], prefix: str = "") -> dict[str, Any]:
    """Each prior as a variable of the current model (a Dirichlet sized by its `a`, or 2)."""
    made = {}
    for key, prior in priors.items():
        dirichlet = prior.distribution == "Dirichlet"
        alpha = np.asarray(prior.parameters.get("a", 1.0))
        size = (alpha.size if alpha.ndim else 2) if dirichlet else None
        made[key] = create(priors, key, prefix + key, size=size)
    return made


def check_values(priors: Mapping[str, Prior], defaults: Mapping[str, Prior]) -> None:
    """Refuse priors the model cannot use, naming the key, before any data are read.

    Parameters outside their range (a negative sd, Uniform with lower > upper) give a log-density
    that is not finite at PyMC's initial point, which NUTS would report only at sampling. A
    prior replacing a positive default (a scale such as sigma: PyMC samples it on the log
    scale) must be positive too: Normal for sigma would propose negative scales. One throwaway
    model; 200 draws of each replaced prior.
    """
    replaced = [k for k in priors if to_mapping(priors[k]) != to_mapping(defaults[k])]
    with pm.Model() as model:
        made = _declare(priors)
    try:
        logps = model.point_logps()
    except Exception as exc:  # PyMC's parameter checks raise several types
        raise ConfigError(f"priors: invalid parameter values ({exc})") from exc
    for name, value in logps.items():
        if not np.isfinite(value):
            key = next(
                (k for k in sorted(priors, key=len, reverse=True) if name.startswith(k)), name
            )
            raise ConfigError(
                f"priors.{key} = {to_mapping(priors[key]) if key in priors else '?'}: "
                f"parameters outside their range (log-density of {name} at its initial value "
                f"is {value}); scales, shapes and rates must be positive, lower < upper"
            )
    positive = [k for k in replaced if _positive(defaults[k])]
    for key in positive:
        if not np.all(pm.draw(made[key], draws=200, random_seed=1) > 0):
            raise ConfigError(
                f"priors.{key} = {to_mapping(priors[key])}: {key} must be positive (its "
                f"default is {defaults[key].distribution}), but this prior puts mass at or "
                "below 0; use a positive distribution such as HalfNormal, Gamma or LogNormal"
            )


def _positive(prior: Prior) -> bool:
    """Whether PyMC samples the prior on the log scale (its support is the positive reals)."""
    with pm.Model() as model:
        variable = _declare({"x": prior})["x"]
    return isinstance(
        model.rvs_to_transforms.get(variable), pm.distributions.transforms.LogTransform
    )
