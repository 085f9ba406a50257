"""What a registered model provides (`ModelDefinition`) and what each of its fits is (`Fit`).

A model module declares its config spec, default priors, the fits it declares on a design, and
its summaries; `bayesmetal.models.registry` lists the modules and `workflow` reads nothing else.
A `Fit` carries its posterior contract, the variables and dims its InferenceData must hold,
which the sampling engine writes to and `check_posterior` verifies before summaries run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
from matplotlib.figure import Figure

from bayesmetal.arviz_api import InferenceData
from bayesmetal.design import Design
from bayesmetal.errors import BayesmetalError
from bayesmetal.priors import Priors
from bayesmetal.run_schema import ModelSpec, SummarySpec

Dims = tuple[str, ...]


class ContractError(BayesmetalError):
    """A posterior lacks a variable or dimension its model's contract promises."""


@dataclass(frozen=True)
class Fit:
    """One declared model to sample.

    `label` names its files; `build` declares the PyMC model (called only when needed: BKMR's
    Gibbs engine never builds it at full size); `posterior` maps each variable its
    InferenceData must hold to its dims; `engine` names the sampler (`bayesmetal.engines`),
    with `problem` what a dedicated engine reads; `constant_data` holds arrays the summaries
    need beside the design (BKMR's knots), as {name: (dims, array)}. `adjust(idata, survey,
    seed)`, when given, maps a weighted fit's pseudo-posterior to the survey design in place
    of `survey_adjust`'s sandwich on the PyMC declaration (BKMR's jackknife).
    """

    label: str
    build: Callable[[], pm.Model]
    posterior: dict[str, Dims]
    engine: str = "pymc"
    problem: Any = None
    constant_data: dict[str, tuple[Dims, np.ndarray]] = field(default_factory=dict)
    adjust: Callable[..., InferenceData] | None = None

    @property
    def diagnosed(self) -> list[str]:
        """Variables whose convergence is checked: all but per-observation ones."""
        return [name for name, dims in self.posterior.items() if "obs" not in dims]


def check_posterior(idata: InferenceData, fit: Fit) -> None:
    """Refuse an InferenceData that breaks the fit's contract, naming what is missing."""
    posterior = idata.posterior
    problems = []
    for name, dims in fit.posterior.items():
        if name not in posterior:
            problems.append(f"{name} is missing")
        elif tuple(posterior[name].dims[2:]) != dims:
            problems.append(f"{name} has dims {posterior[name].dims[2:]}, expected {dims}")
    if problems:
        raise ContractError(
            f"fit {fit.label!r}: the posterior breaks its contract: " + "; ".join(problems)
        )


@dataclass(frozen=True)
class Fitted:
    """What a model's summaries read: its fits, their posteriors (by label), the design they
    were sampled on, the summary settings and the run's seed."""

    fits: list[Fit]
    idatas: dict[str, InferenceData]
    design: Design
    settings: SummarySpec
    seed: int


@dataclass
class Summary:
    """A model's tidy tables and figures; `headline` names the tables (and figures) that
    answer the question (PIPs, weights, effects), which the terminal and the report show
    first."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    headline: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelDefinition:
    """Everything the rest of bayesmetal knows about one model.

    - `spec`: its `model:` config section (a `ModelSpec` subclass whose `name` is a Literal);
    - `families`: the outcome families it takes;
    - `default_priors(spec, family)`: its priors in YAML form, each replaceable by name;
    - `fits(design, spec, priors, seed)`: the fits it declares (one, or one per exposure);
    - `summarise(fitted, spec)`: its tables and figures;
    - `check_priors(spec, priors)`: what its engine cannot honour, refused at load (optional);
    - `check_survey(spec, family)`: what it cannot do with survey weights, refused at load
      (optional; every model takes them: a pseudo-likelihood adjusted to the design by
      `survey_adjust` or the fit's own `adjust`).
    """

    name: str
    spec: type[ModelSpec]
    families: tuple[str, ...]
    default_priors: Callable[[Any, str], dict[str, dict[str, Any]]]
    fits: Callable[[Design, Any, Priors, int], list[Fit]]
    summarise: Callable[[Fitted, Any], Summary]
    check_priors: Callable[[Any, Priors], None] | None = None
    check_survey: Callable[[Any, str], None] | None = None


def fit_label(kind: str, exposure: str) -> str:
    """A per-exposure fit's label, which names its files (idata_<label>.nc, rank_<label>.png):
    anything but letters, digits, '.', '_' and '-' becomes '_', so an exposure named
    'Pb (ug/dL)' or '../x' can neither break nor escape the run folder."""
    return f"{kind}_{re.sub(r'[^A-Za-z0-9._-]', '_', exposure)}"


def pymc_fit(label: str, model: pm.Model) -> Fit:
    """A fit PyMC samples: its contract is every variable the declaration names (free and
    deterministic), with the dims it gives them."""
    names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    dims = model.named_vars_to_dims
    return Fit(label, lambda: model, {name: tuple(dims.get(name, ())) for name in names})
