"""BKMR benchmark on simulated data: time, sampling efficiency, memory and PIP recovery."""

from __future__ import annotations

import resource
import time

import numpy as np

from bayesmetal.bkmr.simulate import ACTIVE, h_true, sim_bkmr
from bayesmetal.diagnostics import check
from bayesmetal.models import bkmr
from bayesmetal.models.bkmr import BkmrSpec
from bayesmetal.run_schema import DiagnosticTargets, SamplerSpec
from bayesmetal.summaries import bkmr as summary
from bayesmetal.workflow import fit_design


def bench_one(
    n: int, knots: int | None, chains: int, tune: int, draws: int, seed: int = 1
) -> dict[str, object]:
    """Fit one setting; ESS and R-hat over r, every PIP, sigma2, lambda and beta (PIPs of
    exactly 0 or 1 have no ESS: the diagnostics check them by their conditional PIP)."""
    design, _ = sim_bkmr(n, seed=seed)
    spec = BkmrSpec(name="bkmr", knots=knots)
    start = time.perf_counter()
    _, idatas = fit_design(
        design, spec, SamplerSpec(chains=chains, tune=tune, draws=draws, seed=seed)
    )
    idata = idatas["bkmr"]
    wall = time.perf_counter() - start
    table = check(idata, ["r", "delta", "sigma_sq", "lambda", "beta"], DiagnosticTargets(), "bkmr")
    measured = table[table["rhat"].notna()]
    slowest = measured.loc[measured["ess_bulk"].idxmin(), "parameter"]
    pips = idata.posterior["delta"].mean(("chain", "draw")).to_numpy()
    active = np.isin(np.arange(len(pips)), ACTIVE)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    coverage = h_band_coverage(idata, design, spec, seed)
    min_ess = float(measured["ess_bulk"].min())
    return {
        "n": n,
        "knots": knots or "exact",
        "chains x (tune+draws)": f"{chains} x ({tune}+{draws})",
        "wall_s": round(wall, 1),
        "s_per_iter_chain": round(wall * min(chains, 2) / chains / (tune + draws), 3),
        "min_bulk_ess": round(min_ess),
        "slowest": slowest,
        "ess_per_s": round(min_ess / wall, 2),
        "max_rhat": round(float(measured["rhat"].max()), 3),
        "peak_mb_per_chain": round(peak_mb),
        "pip_active_min": round(float(pips[active].min()), 2),
        "pip_null_max": round(float(pips[~active].max()), 2),
        "h_in_band": round(coverage, 2),
        "all_ok": bool(table["ok"].all()),
    }


def h_band_coverage(idata, design, spec: BkmrSpec, seed: int, ngrid: int = 20) -> float:
    """Share of univariate grid points (others at their median) where the true h lies in
    the 95% band."""
    knots = bkmr.knots_for(design, spec, seed)
    post = summary.h_posterior(idata, design, 100, knots)
    table = summary.pred_resp_univar(post, ngrid)
    base = np.quantile(design.z, 0.5, axis=0)
    inside = []
    for j, name in enumerate(design.exposures):
        part = table[table["variable"] == name]
        points = np.tile(base, (len(part), 1))
        points[:, j] = part["z"]
        truth = h_true(points)
        inside.append((part["lower"] <= truth) & (truth <= part["upper"]))
    return float(np.mean(np.concatenate(inside)))
