"""Timing and sampling efficiency of configured fits, for scripts/bench.py."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from bayesmetal.config import load_config
from bayesmetal.runs import write_summaries
from bayesmetal.workflow import plan, sample_fits, summarise


def bench_config(path: Path, overrides: list[str] | None = None) -> dict[str, object]:
    """Fit one config: wall time, min ESS and ESS per second, the time of the survey design
    adjustment (0 for an unweighted run), and the time of the summaries (diagnostics, tables,
    figures and report, written to a temporary folder) as a share of the sampling time."""
    config = load_config(path, [*(overrides or []), "sampler.progressbar=false"])
    start = time.perf_counter()
    planned = plan(config)
    prepared = time.perf_counter() - start
    idatas = sample_fits(planned)
    sampled = time.perf_counter()
    results = summarise(planned, idatas)
    with tempfile.TemporaryDirectory() as folder:
        planned.table.flow.to_csv(Path(folder) / "flow.csv", index=False)  # as write_posterior
        write_summaries(Path(folder), results)
    total = time.perf_counter() - start
    summarising = total - (sampled - start)
    sampling = sum(float(i.attrs["wall_time_s"]) for i in results.idatas.values())
    adjusting = sum(float(i.attrs.get("survey_adjustment_s", 0)) for i in results.idatas.values())
    checks = results.diagnostics
    min_ess = float(checks[["ess_bulk", "ess_tail"]].min().min())
    return {
        "config": Path(path).name,
        "n": planned.design.n,
        "fits": len(planned.fits),
        "chains x draws": f"{config.sampler.chains} x {config.sampler.draws}",
        "backend": ",".join(
            sorted({str(i.attrs["sampler_backend"]) for i in results.idatas.values()})
        ),
        "prepare_s": round(prepared, 1),
        "sample_s": round(sampling, 1),
        "survey_adjust_s": round(adjusting, 1),
        "summarise_s": round(summarising, 1),
        "summarise_share": round(summarising / sampling, 3) if sampling else float("nan"),
        "wall_s": round(total, 1),
        "min_ess": round(min_ess),
        "min_ess_per_s": round(min_ess / sampling, 1),
        "max_rhat": round(float(checks["rhat"].max()), 3),
        "divergences": int(checks.groupby("fit")["divergences"].first().sum()),
        "converged": bool(checks["ok"].all()),
    }


def bench_configs(paths: list[Path], overrides: list[str] | None = None) -> pd.DataFrame:
    """One row per config, measured in one process one after another."""
    return pd.DataFrame([bench_config(p, overrides) for p in paths])
