"""SBC of the BKMR Gibbs sampler: proper priors, data simulated from exactly the model
`bayesmetal.bkmr.sampler` assumes (per variant), one chain per replicate, ranks of every
scalar parameter and of h at a few observed points.

Model: y = h + X beta [+ Z u] + e, e ~ N(0, sigma2), h ~ N(0, lambda sigma2 K_r), K_r the
Gaussian kernel (exact) or its predictive-process approximation U U' (knots),
u ~ N(0, lambda_ri sigma2); probit: y = 1[y* > 0] with y* that Gaussian model at sigma2 = 1.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pymc as pm

from bayesmetal.bkmr import priors as bkmr_priors
from bayesmetal.bkmr.kernel import (
    Factor,
    choose_knots,
    gaussian_conditional,
    kernel,
    low_rank_basis,
)
from bayesmetal.bkmr.sampler import BkmrData, Covariance, run_chain
from bayesmetal.calibration.ranks import rank_all, thin_indices

BKMR_VARIANTS = ("exact", "knots", "hierarchical", "probit", "random_intercept", "none")
COVARIATES = 2
H_POINTS = np.array([0, 1, 2])  # observations at which h is ranked
INTERCEPT_GROUPS = 4  # random-intercept groups (persons assigned in turn)

# proper priors that give sensible data: y has sd about 2-3, r_m as R's default (1/r ~
# Uniform(0, 100)); the package defaults (sigma_sq InverseGamma(0.001, 0.001)) are too vague
SBC_PRIORS: dict[str, dict[str, Any]] = bkmr_priors.DEFAULT_PRIORS | {
    "beta": {"distribution": "Normal", "mu": 0.0, "sigma": 1.0},
    "sigma_sq": {"distribution": "InverseGamma", "alpha": 4.0, "beta": 3.0},
    "lambda": {"distribution": "Gamma", "alpha": 2.0, "beta": 0.5},
}


def variant_priors(variant: str) -> dict[str, dict[str, Any]]:
    """SBC_PRIORS as the variant's model takes them: no sigma_sq for probit (fixed at 1), a
    lambda_ri like lambda for the random intercept."""
    priors = {key: dict(spec) for key, spec in SBC_PRIORS.items()}
    if variant == "probit":
        del priors["sigma_sq"]
    if variant == "random_intercept":
        priors["lambda_ri"] = dict(SBC_PRIORS["lambda"])
    return priors


def bkmr_design(variant: str, n: int, m: int, rng: np.random.Generator) -> BkmrData:
    """The fixed part of a variant's data (y still zero): standardised exposures, centred
    covariates, and the variant's knots (n / 4, at least 5), exposure groups (pairs in
    order, the last alone when m is odd) or intercept groups."""
    if variant not in BKMR_VARIANTS:
        raise ValueError(f"unknown BKMR variant {variant!r}; known: {BKMR_VARIANTS}")
    z = rng.standard_normal((n, m))
    z = (z - z.mean(0)) / z.std(0, ddof=1)
    x = rng.standard_normal((n, COVARIATES))
    knots = choose_knots(z, max(5, n // 4), seed=0) if variant == "knots" else None
    return BkmrData(
        y=np.zeros(n),
        X=x - x.mean(0),
        z=z,
        knots=knots,
        selection=variant != "none",
        probit=variant == "probit",
        groups=np.arange(m) // 2 if variant == "hierarchical" else None,
        random_intercept=np.arange(n) % INTERCEPT_GROUPS if variant == "random_intercept" else None,
    )


def _prior_draws(priors: dict[str, dict[str, Any]], size: int, rng) -> dict[str, np.ndarray]:
    """`size` independent draws of every prior, by PyMC from the same distribution objects
    whose densities the sampler evaluates."""
    names = list(priors)
    values = pm.draw(
        [bkmr_priors.dist(priors[name], name) for name in names],
        draws=size,
        random_seed=int(rng.integers(2**31)),
    )
    return {name: np.atleast_1d(v) for name, v in zip(names, values, strict=True)}


def draw_selection(data: BkmrData, pi: float, rng: np.random.Generator) -> np.ndarray:
    """delta from its prior: each exposure in with probability pi (component-wise), or each
    group in with probability pi and then exactly one member, chosen uniformly."""
    m = data.z.shape[1]
    if not data.selection:
        return np.ones(m, dtype=int)
    if data.groups is None:
        return (rng.random(m) < pi).astype(int)
    delta = np.zeros(m, dtype=int)
    for g in np.unique(data.groups):
        if rng.random() < pi:
            delta[rng.choice(np.flatnonzero(data.groups == g))] = 1
    return delta


def draw_truth(
    data: BkmrData, priors: dict[str, dict[str, Any]], rng: np.random.Generator
) -> dict[str, Any]:
    """Parameters from the prior: beta, sigma_sq (1 for probit), lambda, r = delta * rho,
    delta, pi and lambda_ri where the variant has them."""
    n_cov, m = data.X.shape[1], data.z.shape[1]
    draws = _prior_draws(priors, max(m, n_cov), rng)
    truth: dict[str, Any] = {
        "beta": draws["beta"][:n_cov],
        "sigma_sq": 1.0 if data.probit else float(draws["sigma_sq"][0]),
        "lambda": float(draws["lambda"][0]),
    }
    if data.selection:
        truth["pi"] = float(draws["pi"][0])
    truth["delta"] = draw_selection(data, truth.get("pi", 1.0), rng)
    truth["r"] = truth["delta"] * draws["r"][:m]
    if data.random_intercept is not None:
        truth["lambda_ri"] = float(draws["lambda_ri"][0])
    return truth


def _draw_normal(mean: np.ndarray, cov: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw of N(mean, cov) for a positive semi-definite cov (eigen-decomposition: kernel
    matrices are often singular to working precision)."""
    values, vectors = np.linalg.eigh(cov)
    return mean + vectors @ (np.sqrt(np.clip(values, 0, None)) * rng.standard_normal(len(mean)))


def simulate(
    data: BkmrData, truth: dict[str, Any], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The outcome and h at the observed points: h from its (exact or predictive-process)
    prior, then y = h + X beta [+ Z u] + e; probit: y = 1[that > 0] with sigma2 = 1."""
    n = len(data.y)
    scale = np.sqrt(truth["lambda"] * truth["sigma_sq"])
    if data.knots is None:
        h = _draw_normal(np.zeros(n), scale**2 * kernel(data.z, data.z, truth["r"]), rng)
    else:
        basis = low_rank_basis(data.z, data.knots, truth["r"])
        h = scale * basis @ rng.standard_normal(basis.shape[1])
    latent = h + data.X @ truth["beta"] + np.sqrt(truth["sigma_sq"]) * rng.standard_normal(n)
    if data.onehot is not None:
        u = np.sqrt(truth["lambda_ri"] * truth["sigma_sq"]) * rng.standard_normal(
            data.onehot.shape[1]
        )
        latent += data.onehot @ u
    return ((latent > 0).astype(float) if data.probit else latent), h


def kernel_matrix(data: BkmrData, r: np.ndarray) -> np.ndarray:
    """K at the observed points as the model has it: exact, or U U' with knots."""
    if data.knots is None:
        return kernel(data.z, data.z, r)
    basis = low_rank_basis(data.z, data.knots, r)
    return basis @ basis.T


def v_factor(data: BkmrData, r: np.ndarray, lam: float, lam_ri: float) -> Factor:
    """The factorised V = I + lambda K [+ lambda_ri Z Z'], by the sampler's own code."""
    return Covariance(data).factor(r, lam, lam_ri)


def h_conditional(
    k: np.ndarray, factor: Factor, resid: np.ndarray, lam: float, sigma_sq: float, points
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of h at `points` given the residual e = y - X beta and the other
    parameters: N(lambda K V^-1 e, sigma2 lambda (K - lambda K V^-1 K)), since h and y are
    jointly Gaussian with Cov(h, y) = sigma2 lambda K and Var(y) = sigma2 V."""
    prior = k[np.ix_(points, points)]
    return gaussian_conditional(factor, k[:, points], prior, resid, lam, sigma_sq)


def h_draws(
    data: BkmrData, draws: dict[str, np.ndarray], keep: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One draw of h at H_POINTS from its conditional given each kept posterior draw
    (probit: given that draw's latent y*, with sigma2 = 1)."""
    out = np.empty((len(keep), len(H_POINTS)))
    for row, d in enumerate(keep):
        r, lam = draws["r"][d], float(draws["lambda"][d])
        lam_ri = float(draws["lambda_ri"][d]) if "lambda_ri" in draws else 0.0
        sigma_sq = 1.0 if data.probit else float(draws["sigma_sq"][d])
        y = draws["ystar"][d].astype(float) if data.probit else data.y
        resid = y - data.X @ draws["beta"][d]
        factor = v_factor(data, r, lam, lam_ri)
        mean, cov = h_conditional(kernel_matrix(data, r), factor, resid, lam, sigma_sq, H_POINTS)
        out[row] = _draw_normal(mean, cov, rng)
    return out


def ranked_names(data: BkmrData) -> list[str]:
    """The sampler's parameters that SBC ranks for this variant (besides h)."""
    names = ["beta", "lambda", "r"] + ([] if data.probit else ["sigma_sq"])
    if data.selection:
        names += ["delta", "pi"]
    if data.random_intercept is not None:
        names.append("lambda_ri")
    return names


def bkmr_replicate(
    variant: str,
    design: BkmrData,
    tune: int,
    draws: int,
    keep: int,
    rng: np.random.Generator,
) -> dict[str, int]:
    """One SBC replicate: truth from the prior, data from the model, one Gibbs chain, and
    the rank of each true value among `keep` evenly thinned draws."""
    priors = variant_priors(variant)
    truth = draw_truth(design, priors, rng)
    y, h = simulate(design, truth, rng)
    data = replace(design, y=y)
    chain = run_chain(data, priors, tune, draws, int(rng.integers(2**31)), 0)
    kept = thin_indices(draws, keep)
    posterior = {name: chain.draws[name][kept] for name in ranked_names(data)}
    posterior["h"] = h_draws(data, chain.draws, kept, rng)
    truth["h"] = h[H_POINTS]
    return rank_all(posterior, truth, rng)
