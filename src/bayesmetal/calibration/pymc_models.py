"""SBC of the PyMC models (GLM gaussian/bernoulli, BWQS gaussian) as the project builds and
samples them: `models.glm.build_glm`, `models.bwqs.build_bwqs`, `sampling.sample` (NUTS).

Each worker builds a variant's model once, on a fixed design, with the observed outcome
replaced by a shared variable; a replicate draws the parameters and y from that very model
(prior predictive), sets y, and samples. Only the first fit in a process compiles in C.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
from pytensor.compile.sharedvalue import SharedVariable

from bayesmetal.calibration.ranks import rank_all, thin_indices
from bayesmetal.design import Design, make_design
from bayesmetal.models.bwqs import BwqsSpec, build_bwqs
from bayesmetal.models.glm import build_glm
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.sampling import sample

PYMC_VARIANTS = ("glm_gaussian", "glm_bernoulli", "bwqs")

# proper priors on the scale of the designs below (log exposures and covariates with sd 1)
COEFFICIENT = {"distribution": "Normal", "mu": 0.0, "sigma": 0.5}
SBC_PRIORS: dict[str, dict[str, dict[str, Any]]] = {
    "glm": {
        "intercept": {"distribution": "Normal", "mu": 0.0, "sigma": 1.0},
        "beta": dict(COEFFICIENT),
        "gamma": dict(COEFFICIENT),
        "sigma": {"distribution": "HalfNormal", "sigma": 1.0},
    },
    "bwqs": {
        "intercept": {"distribution": "Normal", "mu": 0.0, "sigma": 1.0},
        "gamma": dict(COEFFICIENT),
        "weights": {"distribution": "Dirichlet", "a": 1.0},
        "b1": dict(COEFFICIENT),
        "sigma": {"distribution": "HalfNormal", "sigma": 1.0},
    },
}


def pymc_design(family: str, n: int, m: int, rng: np.random.Generator) -> Design:
    """A fixed design: m log-normal exposures, one covariate, a placeholder outcome."""
    frame = pd.DataFrame(
        np.exp(rng.standard_normal((n, m))), columns=[f"z{j + 1}" for j in range(m)]
    )
    frame["c1"] = rng.standard_normal(n)
    frame["y"] = np.arange(n) % 2 * 1.0  # replaced in every replicate
    exposures = list(frame.columns[:m])
    return make_design(frame, "y", family, exposures, ["c1"], id_column="none")


def build_variant(variant: str, design: Design) -> pm.Model:
    """The project's model for the variant, built on the design."""
    if variant == "bwqs":
        return build_bwqs(design, BwqsSpec(name="bwqs"), SBC_PRIORS["bwqs"])
    if variant in ("glm_gaussian", "glm_bernoulli"):
        priors = dict(SBC_PRIORS["glm"])
        if design.family == "bernoulli":
            del priors["sigma"]
        return build_glm(design, design.multi_terms(), priors)
    raise ValueError(f"unknown PyMC variant {variant!r}; known: {PYMC_VARIANTS}")


@lru_cache(maxsize=8)
def swappable_model(
    variant: str, n: int, m: int, design_seed: tuple[int, ...]
) -> tuple[pm.Model, SharedVariable]:
    """The variant's model with its outcome observed through a shared variable, built once
    per process and design, so that replicates change y without rebuilding the graph."""
    family = "bernoulli" if variant == "glm_bernoulli" else "gaussian"
    model = build_variant(variant, pymc_design(family, n, m, np.random.default_rng(design_seed)))
    y = pytensor.shared(np.zeros(n, dtype=model["y"].type.dtype), name="y_sbc")
    return pm.observe(model, {"y": y}), y


def pymc_replicate(
    variant: str,
    n: int,
    m: int,
    design_seed: tuple[int, ...],
    tune: int,
    draws: int,
    keep: int,
    rng: np.random.Generator,
) -> dict[str, int]:
    """One SBC replicate: parameters and y from the model's prior predictive, one NUTS
    chain, and the rank of every true scalar among `keep` evenly thinned draws."""
    model, y = swappable_model(variant, n, m, design_seed)
    names = [rv.name for rv in model.free_RVs]
    values = pm.draw(
        [model[name] for name in names] + [model["y"]], random_seed=int(rng.integers(2**31))
    )
    y.set_value(values[-1].astype(y.dtype))
    spec = SamplerSpec(
        chains=1, cores=1, tune=tune, draws=draws, seed=int(rng.integers(2**31)), progressbar=False
    )
    posterior = sample(model, spec).posterior
    kept = thin_indices(draws, keep)
    thinned = {name: posterior[name].to_numpy()[0][kept] for name in names}
    return rank_all(thinned, dict(zip(names, values[:-1], strict=True)), rng)
