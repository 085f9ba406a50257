"""PSIS-LOO of a fit (Vehtari, Gelman & Gabry 2017, through ArviZ): each observation's expected
log predictive density left out, and its Pareto k, from the pointwise log-likelihood of the
fit's declared PyMC model at (a thinned set of) its posterior draws.

Only for fits whose likelihood is an observed variable: a survey fit's weighted
pseudo-likelihood is a Potential (PSIS-LOO of a pseudo-posterior estimates nothing of the
population), and BKMR's collapsed likelihood does not factorise over persons (its LOO needs
the leave-one-out Gaussian conditionals: not done yet).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm

from bayesmetal.arviz_api import InferenceData, loo_pointwise
from bayesmetal.engines import PYMC
from bayesmetal.models.contract import Fit

MAX_DRAWS = 2000  # draws read (evenly thinned): the Pareto k fit needs hundreds, not more
K_WARN = 0.7  # Pareto k above it: that observation's elpd is not reliable


def pointwise(fit: Fit, idata: InferenceData, ids: np.ndarray) -> pd.DataFrame | None:
    """One row per person (fit, obs: the person's id, elpd_loo, pareto_k), or None where LOO
    does not apply (see the module docstring)."""
    if fit.engine != PYMC:
        return None
    model = fit.build()
    observed = [rv.name for rv in model.observed_RVs]
    if len(observed) != 1:
        return None
    posterior = idata.posterior
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    step = max(1, int(np.ceil(chains * draws / MAX_DRAWS)))
    thinned = posterior.isel(draw=slice(None, None, step))
    loglik = pm.compute_log_likelihood(
        InferenceData(posterior=thinned),
        model=model,
        extend_inferencedata=False,
        progressbar=False,
    )[observed[0]]
    loglik = loglik.rename({loglik.dims[-1]: "obs"})
    elpd, k = loo_pointwise(thinned, loglik)
    return pd.DataFrame({"fit": fit.label, "obs": ids, "elpd_loo": elpd, "pareto_k": k})


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
