"""A stand-in for MCMC in tests that check plumbing, not statistics: prior draws shaped like
a posterior, seconds instead of a NUTS compile and run."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import xarray as xr

from bayesmetal import engines
from bayesmetal.arviz_api import InferenceData
from bayesmetal.models.contract import Fit
from bayesmetal.run_schema import SamplerSpec


def prior_as_posterior(model: pm.Model, spec: SamplerSpec, seed_offset: int = 0) -> InferenceData:
    """spec.chains x spec.draws prior draws of the model's variables, as a posterior group."""
    with model, warnings.catch_warnings():  # a survey fit's pseudo-likelihood is a Potential
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        prior = pm.sample_prior_predictive(
            draws=spec.chains * spec.draws, random_seed=spec.seed + seed_offset
        ).prior
    variables = {}
    for name, values in prior.data_vars.items():
        shaped = values.to_numpy().reshape(spec.chains, spec.draws, *values.shape[2:])
        variables[name] = (("chain", "draw", *values.dims[2:]), shaped)
    coords = {dim: prior.coords[dim] for dim in prior.dims if dim not in ("chain", "draw")}
    posterior = xr.Dataset(
        variables,
        coords={"chain": np.arange(spec.chains), "draw": np.arange(spec.draws), **coords},
    )
    idata = InferenceData(posterior=posterior)
    idata.attrs.update(sampler_backend="fake (prior draws)", wall_time_s=0.0)
    return idata


def use_fake_sampler(monkeypatch) -> None:
    """Replace the PyMC engine by prior draws."""

    def fake(fit: Fit, spec: SamplerSpec, seed_offset: int = 0) -> InferenceData:
        return prior_as_posterior(fit.build(), spec, seed_offset)

    monkeypatch.setitem(engines.ENGINES, engines.PYMC, fake)
