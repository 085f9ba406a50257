"""BKMR's Gibbs engine: runs the collapsed sampler (`bkmr.sampler`) on a declared BKMR fit and
returns InferenceData holding exactly the fit's posterior contract, as PyMC's engine does.

It also continues a saved run (`extend`), which R's bkmr cannot, and records each stuck
indicator's Rao-Blackwellised PIP (`bkmr.inclusion`) for the diagnostics.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from bayesmetal.arviz_api import InferenceData, concat_draws, from_chains
from bayesmetal.bkmr.inclusion import inclusion_check
from bayesmetal.bkmr.posterior import BETA, DELTA, LAMBDA
from bayesmetal.bkmr.sampler import BkmrData, sample_chains
from bayesmetal.errors import ConfigError
from bayesmetal.models.contract import Fit
from bayesmetal.priors import Priors
from bayesmetal.progress import chain_bars
from bayesmetal.run_schema import SamplerSpec

NAME = "bkmr-gibbs"
RESUME_ATTR = "bkmr_resume"


@dataclass(frozen=True)
class GibbsProblem:
    """What the Gibbs engine reads: the sampler's data, the priors and the coords."""

    data: BkmrData
    priors: Priors
    coords: dict[str, list]


def sample(
    fit: Fit, sampler: SamplerSpec, seed_offset: int = 0, resume: list[dict] | None = None
) -> InferenceData:
    """Draw the fit's posterior. The chains' final states and frozen proposals go into
    attrs['bkmr_resume'], so that `extend` can continue them. The seed is the run's own
    (knots and chains depend on it alone), so `seed_offset` is unused: BKMR is one fit."""
    problem: GibbsProblem = fit.problem
    tune = 0 if resume else sampler.tune  # a continued chain has no warm-up
    title = (
        f"BKMR Gibbs sampler: {sampler.chains} chains x ({tune} warm-up + {sampler.draws} "
        f"draws), {min(sampler.chains, sampler.cores or os.cpu_count() or 1)} processes"
    )
    with chain_bars(sampler.chains, tune, sampler.draws, sampler.progressbar, title) as report:
        chains, wall = sample_chains(
            problem.data,
            problem.priors,
            sampler.tune,
            sampler.draws,
            sampler.chains,
            sampler.seed,
            sampler.cores,
            resume,
            progress=report,
        )
    draws = {k: np.stack([c.draws[k] for c in chains]) for k in fit.posterior}
    stats = {
        k: np.stack([np.full(sampler.draws, c.stats[k]) for c in chains]) for k in chains[0].stats
    }
    stats |= {k: np.stack([c.sample_stats[k] for c in chains]) for k in chains[0].sample_stats}
    dims = {name: list(d) for name, d in fit.posterior.items()} | {"flip": ["exposure"]}
    idata = from_chains(draws, problem.coords, dims, stats)
    idata.attrs["sampler_backend"] = NAME
    idata.attrs["wall_time_s"] = round(wall, 2)
    if problem.data.knots is not None:
        idata.attrs["knots"] = int(len(problem.data.knots))
    idata.attrs[RESUME_ATTR] = json.dumps([c.resume for c in chains])
    if resume is None:
        check_inclusion(idata, problem)
    return idata


def check_inclusion(idata: InferenceData, problem: GibbsProblem) -> None:
    """attrs['bkmr_conditional_pip']: for each exposure whose indicator never flipped after
    warm-up, its Rao-Blackwellised PIP (see `bayesmetal.bkmr.inclusion`), which the
    diagnostics compare with the chains' PIP of exactly 0 or 1."""
    if not problem.data.selection:
        return
    post = idata.posterior
    draws = {k: post[k].to_numpy() for k in post.data_vars}
    if BETA not in draws:
        draws[BETA] = np.zeros((*draws[LAMBDA].shape, 0))
    exposures = list(post[DELTA].coords["exposure"].to_numpy())
    checked = inclusion_check(problem.data, problem.priors, draws)
    idata.attrs["bkmr_conditional_pip"] = json.dumps(
        {str(exposures[j]): value for j, value in checked.items()}
    )


def extend(fit: Fit, previous: InferenceData, sampler: SamplerSpec) -> InferenceData:
    """Continue a saved run by `sampler.draws` more draws per chain (no new warm-up) and
    return all draws."""
    if RESUME_ATTR not in previous.attrs:
        raise ConfigError("--extend: the run holds no BKMR Gibbs sampler state to continue")
    resume = json.loads(previous.attrs[RESUME_ATTR])
    if len(resume) != previous.posterior.sizes["chain"]:
        raise ConfigError("--extend: the saved sampler state does not match the run's chains")
    more = sampler.model_copy(update={"chains": len(resume), "tune": 0})
    added = sample(fit, more, resume=resume)
    combined = concat_draws(previous, added)
    combined.attrs.update(added.attrs)
    combined.attrs["wall_time_s"] = round(
        float(previous.attrs.get("wall_time_s", 0)) + float(added.attrs["wall_time_s"]), 2
    )
    check_inclusion(combined, fit.problem)
    return combined
