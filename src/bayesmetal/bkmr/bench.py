"""BKMR benchmark on simulated data: time, sampling efficiency, memory and PIP recovery."""

from __future__ import annotations

import resource
import time

import numpy as np

from bayesmetal.bkmr.simulate import ACTIVE, sim_bkmr
from bayesmetal.config import BkmrSpec, DiagnosticTargets, SamplerSpec
from bayesmetal.diagnostics import check
from bayesmetal.models import bkmr


def bench_one(
    n: int, knots: int | None, chains: int, tune: int, draws: int, seed: int = 1
) -> dict[str, object]:
    """Fit one setting; ESS over r and sigma2 (PIPs of exactly 0/1 have no ESS)."""
    design, _ = sim_bkmr(n, seed=seed)
    spec = BkmrSpec(name="bkmr", knots=knots)
    start = time.perf_counter()
    idata = bkmr.sample_gibbs(
        design,
        spec,
        bkmr.default_priors(design),
        SamplerSpec(chains=chains, tune=tune, draws=draws, seed=seed),
    )
    wall = time.perf_counter() - start
    table = check(idata, ["r", "sigma_sq", "delta"], DiagnosticTargets(), "bkmr")
    measured = table[table["rhat"].notna()]
    pips = idata.posterior["delta"].mean(("chain", "draw")).to_numpy()
    active = np.isin(np.arange(len(pips)), ACTIVE)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    min_ess = float(measured["ess_bulk"].min())
    return {
        "n": n,
        "knots": knots or "exact",
        "chains x (tune+draws)": f"{chains} x ({tune}+{draws})",
        "wall_s": round(wall, 1),
        "s_per_iter_chain": round(wall * min(chains, 2) / chains / (tune + draws), 3),
        "min_bulk_ess": round(min_ess),
        "ess_per_s": round(min_ess / wall, 2),
        "max_rhat": round(float(measured["rhat"].max()), 3),
        "peak_mb_per_chain": round(peak_mb),
        "pip_active_min": round(float(pips[active].min()), 2),
        "pip_null_max": round(float(pips[~active].max()), 2),
    }
