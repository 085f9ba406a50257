"""BKMR as a declarative PyMC model (Bobb et al. 2015; R: kmbayes).

y = h(z) + X beta + e, e ~ N(0, sigma2), h ~ GP(0, tau K), K(z, z') = exp(-sum_m r_m
(z_m - z'_m)^2), lambda = tau / sigma2. With h integrated out, y ~ N(X beta, sigma2 (I +
lambda K)). Component-wise selection: r_m = delta_m rho_m, delta_m ~ Bernoulli(pi).

`build_bkmr` declares the exact model; PyMC samples it with its compound step (NUTS +
BinaryGibbsMetropolis). `sample_gibbs` runs the fast collapsed sampler of
`bayesmetal.bkmr.sampler` on the same model and priors and returns the same variables.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesmetal import priors as prior_lib
from bayesmetal.arviz_api import InferenceData, concat_draws, from_chains
from bayesmetal.bkmr.inclusion import inclusion_check
from bayesmetal.bkmr.kernel import choose_knots
from bayesmetal.bkmr.priors import DEFAULT_PRIORS
from bayesmetal.bkmr.sampler import BkmrData, sample_chains
from bayesmetal.config import BkmrSpec, SamplerSpec
from bayesmetal.design import Design
from bayesmetal.errors import ConfigError

H_JITTER = 1e-6  # probit PyMC model: h at the data ~ N(0, lambda K + H_JITTER I)


def default_priors(design: Design, spec: BkmrSpec | None = None) -> dict[str, dict[str, Any]]:
    """R bkmr's defaults (see bayesmetal.bkmr.priors). Binary outcomes use the probit model,
    whose latent residual variance is fixed at 1, so they have no sigma_sq prior. A random
    intercept adds lambda_ri = its variance / sigma2, with lambda's prior as in R."""
    if design.family not in ("gaussian", "bernoulli"):
        raise ConfigError(f"model bkmr: outcome {design.outcome!r} is {design.family}")
    priors = {key: dict(value) for key, value in DEFAULT_PRIORS.items()}
    if design.family == "bernoulli":
        del priors["sigma_sq"]
    if spec is not None and spec.random_intercept:
        priors["lambda_ri"] = dict(DEFAULT_PRIORS["lambda"])
    return priors


def coefficient_names(design: Design) -> list[str]:
    """The covariate columns. As in R's kmbayes there is no intercept: h carries the level
    (an intercept beside h would be confounded with h's constant part)."""
    return list(design.covariate_columns)


def covariates(design: Design) -> np.ndarray:
    return design.X


def build_bkmr(design: Design, spec: BkmrSpec, priors: dict[str, dict[str, Any]]) -> pm.Model:
    """Declare the exact BKMR model with h integrated out."""
    coords = {
        "exposure": list(design.exposures),
        "coef": coefficient_names(design),
        "obs": range(design.n),
    }
    z = design.z
    sq_dist = (z[:, None, :] - z[None, :, :]) ** 2  # (n, n, M): fine at reference sizes
    with pm.Model(coords=coords) as model:
        mean = 0.0
        if design.X.shape[1]:
            x = pm.Data("X", covariates(design), dims=("obs", "coef"))
            beta = prior_lib.create(priors, "beta", dims=("coef",))
            mean = pt.dot(x, beta)
        lam = prior_lib.create(priors, "lambda")
        if spec.selection == "component":
            pi = prior_lib.create(priors, "pi")
            delta = pm.Bernoulli("delta", p=pi, dims="exposure")
            rho = prior_lib.create(priors, "r", name="rho", dims=("exposure",))
            r = pm.Deterministic("r", delta * rho, dims="exposure")
        elif spec.selection == "hierarchical":
            pi = prior_lib.create(priors, "pi")
            groups = group_index(design, spec)
            parts = []
            for g, name in enumerate(spec.groups):
                members = np.flatnonzero(groups == g)
                included = pm.Bernoulli(f"group_in_{name}", p=pi)
                chosen = pm.Categorical(f"choice_{name}", p=np.full(members.size, 1 / members.size))
                parts.append((members, included * pt.eq(chosen, np.arange(members.size))))
            order = np.concatenate([members for members, _ in parts])
            stacked = pt.concatenate([values for _, values in parts])[np.argsort(order)]
            delta = pm.Deterministic("delta", stacked, dims="exposure")
            rho = prior_lib.create(priors, "r", name="rho", dims=("exposure",))
            r = pm.Deterministic("r", delta * rho, dims="exposure")
        else:
            r = prior_lib.create(priors, "r", dims=("exposure",))
        kernel = pt.exp(-pt.tensordot(pt.as_tensor(sq_dist), r, axes=[[2], [0]]))
        if spec.random_intercept:  # u ~ N(0, lambda_ri sigma2): adds lambda_ri Z Z' to K
            onehot = (design.group[:, None] == np.arange(len(design.group_levels))) * 1.0
            lam_ri = prior_lib.create(priors, "lambda_ri")
            kernel = kernel + lam_ri / lam * pt.as_tensor(onehot @ onehot.T)
        if design.family == "bernoulli":  # probit: h explicit, P(y = 1) = Phi(X beta + h)
            # non-centred, h = L eta: the centred MvNormal left NUTS a step size of ~5e-4 and
            # the delta flips stuck (h fixed, switching r_m changes h's prior density hugely)
            eta = pm.Normal("h_eta", 0.0, 1.0, dims="obs")
            chol = pt.linalg.cholesky(lam * kernel + H_JITTER * pt.eye(design.n))
            h = pm.Deterministic("h", chol @ eta, dims="obs")
            pm.Bernoulli("y", p=pm.math.invprobit(mean + h), observed=design.y, dims="obs")
        else:
            sigma_sq = prior_lib.create(priors, "sigma_sq")
            cov = sigma_sq * (pt.eye(design.n) + lam * kernel)
            pm.MvNormal("y", mu=mean * pt.ones(design.n), cov=cov, observed=design.y, dims="obs")
    return model


def group_index(design: Design, spec: BkmrSpec) -> np.ndarray | None:
    """Group number of each exposure for hierarchical selection; groups must partition them."""
    if spec.selection != "hierarchical":
        return None
    owner: dict[str, int] = {}
    for g, (name, members) in enumerate(spec.groups.items()):
        for exposure in members:
            if exposure not in design.exposures:
                raise ConfigError(
                    f"model.groups.{name}: {exposure!r} is not an exposure "
                    f"of the analysis ({', '.join(design.exposures)})"
                )
            if exposure in owner:
                raise ConfigError(f"model.groups: {exposure!r} is in two groups")
            owner[exposure] = g
    missing = [e for e in design.exposures if e not in owner]
    if missing:
        raise ConfigError(f"model.groups: exposures {missing} are in no group")
    return np.array([owner[e] for e in design.exposures])


def knots_for(design: Design, spec: BkmrSpec, seed: int) -> np.ndarray | None:
    """The knot locations (standardised exposure space) when the model uses knots."""
    return None if spec.knots is None else choose_knots(design.z, spec.knots, seed)


def sample_gibbs(
    design: Design,
    spec: BkmrSpec,
    priors: dict[str, dict[str, Any]],
    sampler: SamplerSpec,
    resume: list[dict[str, Any]] | None = None,
) -> InferenceData:
    """Fast collapsed sampler; posterior variables as in the PyMC model (minus rho).

    The chains' final states and frozen proposals go into attrs['bkmr_resume'], so that
    `extend_gibbs` can continue them."""
    knots = knots_for(design, spec, sampler.seed)
    data = gibbs_data(design, spec, knots)
    chains, wall = sample_chains(
        data,
        priors,
        sampler.tune,
        sampler.draws,
        sampler.chains,
        sampler.seed,
        sampler.cores,
        resume,
    )
    dropped = set() if spec.selection != "none" else {"delta", "pi"}
    if design.family == "bernoulli":
        dropped.add("sigma_sq")  # fixed at 1 in the probit model
    names = [k for k in chains[0].draws if k not in dropped]
    draws = {k: np.stack([c.draws[k] for c in chains]) for k in names}
    stats = {
        k: np.stack([np.full(sampler.draws, c.stats[k]) for c in chains]) for k in chains[0].stats
    }
    stats |= {k: np.stack([c.sample_stats[k] for c in chains]) for k in chains[0].sample_stats}
    dims = {
        "beta": ["coef"],
        "r": ["exposure"],
        "delta": ["exposure"],
        "ystar": ["obs"],
        "flip": ["exposure"],
    }
    coords = {
        "exposure": list(design.exposures),
        "coef": coefficient_names(design),
        "obs": list(range(design.n)),
    }
    idata = from_chains(draws, coords, dims, stats)
    idata.attrs["sampler_backend"] = "bkmr-gibbs"
    idata.attrs["wall_time_s"] = round(wall, 2)
    if knots is not None:
        idata.attrs["knots"] = int(len(knots))
    idata.attrs["bkmr_resume"] = json.dumps([c.resume for c in chains])
    if resume is None:
        check_inclusion(idata, data, priors)
    return idata


def gibbs_data(design: Design, spec: BkmrSpec, knots: np.ndarray | None) -> BkmrData:
    """The arrays and structure the Gibbs sampler reads."""
    return BkmrData(
        y=design.y,
        X=covariates(design),
        z=design.z,
        knots=knots,
        selection=spec.selection != "none",
        groups=group_index(design, spec),
        probit=design.family == "bernoulli",
        random_intercept=design.group if spec.random_intercept else None,
    )


def check_inclusion(idata: InferenceData, data: BkmrData, priors: dict[str, Any]) -> None:
    """attrs['bkmr_conditional_pip']: for each exposure whose indicator never flipped after
    warm-up, its Rao-Blackwellised PIP (see `bayesmetal.bkmr.inclusion`), which the
    diagnostics compare with the chains' PIP of exactly 0 or 1."""
    if not data.selection:
        return
    post = idata.posterior
    names = ["beta", "lambda", "r", "delta", "pi", "lambda_ri", "ystar"]
    draws = {k: post[k].to_numpy() for k in names if k in post}
    if "beta" not in draws:
        draws["beta"] = np.zeros((*draws["lambda"].shape, 0))
    exposures = list(post["delta"].coords["exposure"].to_numpy())
    checked = inclusion_check(data, priors, draws)
    idata.attrs["bkmr_conditional_pip"] = json.dumps(
        {str(exposures[j]): value for j, value in checked.items()}
    )


def extend_gibbs(
    previous: InferenceData,
    design: Design,
    spec: BkmrSpec,
    priors: dict[str, dict[str, Any]],
    sampler: SamplerSpec,
) -> InferenceData:
    """Continue a saved Gibbs run by `sampler.draws` more draws per chain (no new warm-up)
    and return all draws: R's bkmr cannot continue a chain."""
    if "bkmr_resume" not in previous.attrs:
        raise ConfigError("--extend: the run holds no BKMR Gibbs sampler state to continue")
    resume = json.loads(previous.attrs["bkmr_resume"])
    if len(resume) != previous.posterior.sizes["chain"]:
        raise ConfigError("--extend: the saved sampler state does not match the run's chains")
    more = sampler.model_copy(update={"chains": len(resume), "tune": 0})
    added = sample_gibbs(design, spec, priors, more, resume)
    combined = concat_draws(previous, added)
    combined.attrs.update({k: v for k, v in added.attrs.items()})
    combined.attrs["wall_time_s"] = round(
        float(previous.attrs.get("wall_time_s", 0)) + float(added.attrs["wall_time_s"]), 2
    )
    check_inclusion(
        combined, gibbs_data(design, spec, knots_for(design, spec, sampler.seed)), priors
    )
    return combined
