"""PSIS-LOO of a fit (Vehtari, Gelman & Gabry 2017, through ArviZ): each person's expected
log predictive density left out, and its Pareto k, from (a thinned set of) the posterior draws.

- A PyMC fit whose likelihood is one observed variable: the pointwise log-likelihood of its
  declared model (`pm.compute_log_likelihood`).
- BKMR (Gaussian, with knots): h is integrated out, so y - X beta ~ N(0, sigma2 V) with
  V = I + lambda K does not factorise over persons. Each draw gives instead each person's
  leave-one-out Gaussian conditional log p(y_i | y_-i, theta) = log N(y_i; y_i - g_i / c_ii,
  1 / c_ii), g = Sigma^-1 (y - X beta), c_ii = [Sigma^-1]_ii (Sundararajan & Keerthi 2001),
  which is what PSIS-LOO weighs (Buerkner, Gabry & Vehtari 2021, LOO for non-factorised
  models); V^-1 and its diagonal come by Woodbury from the knots' basis in O(n k^2) a draw.

Not for a survey fit (its weighted pseudo-likelihood is a Potential; PSIS-LOO of a
pseudo-posterior estimates nothing of the population), nor for BKMR's probit, random-intercept
or exact-kernel forms (an n x n inverse per draw).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from threadpoolctl import threadpool_limits

from bayesmetal.arviz_api import InferenceData, loo_pointwise
from bayesmetal.bkmr.engine import NAME as GIBBS
from bayesmetal.bkmr.engine import GibbsProblem
from bayesmetal.bkmr.kernel import (
    low_rank_basis,
    predictive_w,
    woodbury_factor,
    woodbury_inverse_diagonal,
)
from bayesmetal.engines import PYMC
from bayesmetal.models.contract import Fit

MAX_DRAWS = 1000  # draws read (evenly thinned): the Pareto k fit needs hundreds, not more
K_WARN = 0.7  # Pareto k above it: that observation's elpd is not reliable


def pointwise(fit: Fit, idata: InferenceData, ids: np.ndarray) -> pd.DataFrame | None:
    """One row per person (fit, obs: the person's id, elpd_loo, pareto_k), or None where LOO
    does not apply (see the module docstring)."""
    if fit.engine == PYMC:
        model = fit.build()
        observed = [rv.name for rv in model.observed_RVs]
        if len(observed) != 1:
            return None
        pointwise_loglik = partial(_pymc_loglik, model, observed[0])
    elif fit.engine == GIBBS and isinstance(fit.problem, GibbsProblem):
        pointwise_loglik = partial(_bkmr_loglik, fit.problem)
    else:
        return None
    posterior = idata.posterior
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    step = max(1, int(np.ceil(chains * draws / MAX_DRAWS)))
    thinned = posterior.isel(draw=slice(None, None, step))
    loglik = pointwise_loglik(thinned)
    if loglik is None:
        return None
    elpd, k = loo_pointwise(thinned, loglik)
    return pd.DataFrame({"fit": fit.label, "obs": ids, "elpd_loo": elpd, "pareto_k": k})


def _pymc_loglik(model: pm.Model, observed: str, posterior: xr.Dataset) -> xr.DataArray:
    loglik = pm.compute_log_likelihood(
        InferenceData(posterior=posterior),
        model=model,
        extend_inferencedata=False,
        progressbar=False,
    )[observed]
    return loglik.rename({loglik.dims[-1]: "obs"})


def _bkmr_loglik(problem: GibbsProblem, posterior: xr.Dataset) -> xr.DataArray | None:
    data = problem.data
    plain = not (data.probit or data.random_intercept is not None or data.weights is not None)
    if not plain or data.knots is None:
        return None
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    beta = posterior["beta"].to_numpy().reshape(-1, data.X.shape[1])
    sigma_sq = posterior["sigma_sq"].to_numpy().ravel()
    lam = posterior["lambda"].to_numpy().ravel()
    r = posterior["r"].to_numpy().reshape(-1, data.z.shape[1])
    out = np.empty((len(lam), len(data.y)))
    with threadpool_limits(1):  # k-dimensional algebra: threads cost more than they give
        for s in range(len(lam)):
            out[s] = bkmr_loo_conditional(
                data.y - data.X @ beta[s], data.z, data.knots, r[s], lam[s], sigma_sq[s]
            )
    return xr.DataArray(out.reshape(*shape, -1), dims=("chain", "draw", "obs"))


def bkmr_loo_conditional(
    resid: np.ndarray,
    z: np.ndarray,
    knots: np.ndarray,
    r: np.ndarray,
    lam: float,
    sigma_sq: float,
) -> np.ndarray:
    """log p(y_i | y_-i, theta) for every person under resid = y - X beta ~ N(0, sigma2 V),
    V = I + lam K_nk K_kk^-1 K_kn (module docstring)."""
    w = predictive_w(low_rank_basis(z, knots, r), lam)
    g = woodbury_factor(w).solve(resid) / sigma_sq
    c = woodbury_inverse_diagonal(w) / sigma_sq
    return -0.5 * np.log(2 * np.pi) + 0.5 * np.log(c) - 0.5 * g**2 / c


def summary(points: pd.DataFrame) -> pd.DataFrame:
    """Per fit: elpd_loo with its SE (sqrt(n) times the SD of the pointwise values), n, and
    how many observations have Pareto k above K_WARN."""
    rows = []
    for label, mine in points.groupby("fit", sort=False):
        values = mine["elpd_loo"].to_numpy()
        rows.append(
            {
                "fit": label,
                "elpd_loo": float(values.sum()),
                "se": float(np.sqrt(len(values)) * values.std(ddof=1)),
                "n": len(values),
                "k_above_0.7": int((mine["pareto_k"] > K_WARN).sum()),
                "max_pareto_k": float(mine["pareto_k"].max()),
            }
        )
    return pd.DataFrame(rows)


def difference(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    """elpd(b) - elpd(a) on the same persons (aligned by their index), and its SE (Vehtari et
    al. 2017, eq. 24)."""
    diff = b.to_numpy() - a.to_numpy()
    return float(diff.sum()), float(np.sqrt(len(diff)) * diff.std(ddof=1))
