"""Run SBC replicates of any variant in a process pool and write the results.

Replicates are independent: each is seeded from (seed, variant, replicate) alone, so the
ranks do not depend on the number of workers or the order in which replicates finish. A
variant's design (exposures, covariates, knots, groups) is fixed across its replicates.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmetal.calibration.bkmr import BKMR_VARIANTS, bkmr_design, bkmr_replicate
from bayesmetal.calibration.plots import ecdf_figure, histogram_figure
from bayesmetal.calibration.pymc_models import PYMC_VARIANTS, pymc_replicate
from bayesmetal.calibration.ranks import variant_verdicts
from bayesmetal.runs import save_figure

VARIANTS = BKMR_VARIANTS + PYMC_VARIANTS


@dataclass(frozen=True)
class SbcSettings:
    """Sizes of every replicate: n persons, m exposures, one chain of `tune` + `draws`
    iterations, `keep` evenly thinned draws ranked (L), and the master seed."""

    n: int = 60
    m: int = 3
    tune: int = 500
    draws: int = 1000
    keep: int = 50
    seed: int = 1


def design_seed(settings: SbcSettings, variant: str) -> tuple[int, ...]:
    """Seed of a variant's fixed design."""
    return (settings.seed, zlib.crc32(variant.encode()))


def replicate_rng(settings: SbcSettings, variant: str, replicate: int) -> np.random.Generator:
    """The generator of one replicate: truth, data, chain seed and tie-breaking."""
    return np.random.default_rng([*design_seed(settings, variant), replicate])


def run_replicate(variant: str, replicate: int, settings: SbcSettings) -> list[dict]:
    """Ranks of one replicate as rows (variant, replicate, parameter, rank, L, n)."""
    rng = replicate_rng(settings, variant, replicate)
    sizes = (settings.tune, settings.draws, settings.keep)
    if variant in BKMR_VARIANTS:
        design_rng = np.random.default_rng(design_seed(settings, variant))
        design = bkmr_design(variant, settings.n, settings.m, design_rng)
        ranks = bkmr_replicate(variant, design, *sizes, rng)
    elif variant in PYMC_VARIANTS:
        seed = design_seed(settings, variant)
        ranks = pymc_replicate(variant, settings.n, settings.m, seed, *sizes, rng)
    else:
        raise ValueError(f"unknown SBC variant {variant!r}; known: {', '.join(VARIANTS)}")
    common = {"variant": variant, "replicate": replicate, "L": settings.keep, "n": settings.n}
    return [common | {"parameter": name, "rank": rank} for name, rank in ranks.items()]


def _run_single_thread(job: tuple[str, int, SbcSettings]) -> list[dict]:
    """A replicate with one BLAS thread (the pool supplies the parallelism), PyMC's per-fit
    log lines silenced."""
    from threadpoolctl import threadpool_limits

    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            return run_replicate(*job)
    finally:
        logger.setLevel(level)


def run_sbc(
    variants: list[str],
    replicates: int,
    settings: SbcSettings,
    workers: int | None = None,
    progress: Callable[[int, int, str, int], None] | None = None,
) -> pd.DataFrame:
    """Ranks of every replicate of every variant (one row per parameter), replicates run in
    `workers` processes (default: all cores; 1 runs them here). `progress(done, total,
    variant, replicate)` is called as each replicate finishes."""
    variants = list(dict.fromkeys(variants))
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown SBC variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    jobs = [(v, r, settings) for r in range(replicates) for v in variants]
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    results: dict[tuple[str, int], list[dict]] = {}
    if workers == 1:
        for done, job in enumerate(jobs, 1):
            results[job[:2]] = _run_single_thread(job)
            if progress:
                progress(done, len(jobs), *job[:2])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_run_single_thread, job): job[:2] for job in jobs}
            for done, future in enumerate(as_completed(futures), 1):
                results[futures[future]] = future.result()
                if progress:
                    progress(done, len(jobs), *futures[future])
    ordered = [(v, r) for v in variants for r in range(replicates)]
    return pd.DataFrame([row for key in ordered for row in results[key]])


def write_sbc(
    folder: Path, ranks: pd.DataFrame, table: pd.DataFrame, bins: int, settings: SbcSettings
) -> None:
    """sbc_ranks.csv (every rank), sbc_summary.csv (the uniformity table), sbc_variants.csv
    (one verdict per variant), settings.csv, and per variant a rank histogram and an ECDF
    difference plot (PNG)."""
    ranks.to_csv(folder / "sbc_ranks.csv", index=False)
    table.to_csv(folder / "sbc_summary.csv", index=False)
    variant_verdicts(table).to_csv(folder / "sbc_variants.csv", index=False)
    pd.DataFrame([asdict(settings) | {"bins": bins}]).to_csv(folder / "settings.csv", index=False)
    for variant, group in ranks.groupby("variant", sort=False):
        save_figure(histogram_figure(group, bins, variant), folder / f"ranks_{variant}.png")
        save_figure(ecdf_figure(group, variant), folder / f"ecdf_{variant}.png")


def progress_printer(start: float) -> Callable[[int, int, str, int], None]:
    """A progress callback that prints one line per finished replicate."""

    def report(done: int, total: int, variant: str, replicate: int) -> None:
        elapsed = time.perf_counter() - start
        print(f"[{done}/{total}] {variant} replicate {replicate} ({elapsed:.0f} s)", flush=True)

    return report
