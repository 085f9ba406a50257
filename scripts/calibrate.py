"""Calibration of the samplers: simulation-based calibration (SBC), prior recovery and
agreement with the exact PyMC declaration, variant by variant.

    python scripts/calibrate.py --prior-recovery
    python scripts/calibrate.py --reference component hierarchical probit random_intercept

    python scripts/calibrate.py --variants exact knots hierarchical probit random_intercept \
        none glm_gaussian glm_bernoulli bwqs --replicates 200 --n 60 --m 3 --tune 500 \
        --draws 1000 --workers 2 --seed 1 --out models/sbc-<time>

Prints the uniformity table (one row per parameter) and a verdict per variant, and writes
sbc_ranks.csv, sbc_summary.csv, sbc_variants.csv, settings.csv and per variant a rank
histogram (ranks_<variant>.png) and an ECDF-difference plot (ecdf_<variant>.png) into the out
folder, which appears only when complete. Exit code 1 when a variant fails.
"""

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from bayesmetal.calibration import (
    VARIANTS,
    SbcSettings,
    run_sbc,
    uniformity_table,
    variant_verdicts,
    write_sbc,
)
from bayesmetal.calibration.prior_recovery import VARIANTS as PRIOR_VARIANTS
from bayesmetal.calibration.prior_recovery import recover
from bayesmetal.calibration.reference import (
    REFERENCE_VARIANTS,
    agreement,
    fit_both,
    reference_convergence,
    weak_signal_design,
)
from bayesmetal.calibration.runner import progress_printer
from bayesmetal.models import bkmr
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.runs import atomic_folder


def parse(argv: list[str] | None) -> argparse.Namespace:
    defaults = SbcSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--n", type=int, default=defaults.n, help="persons per data set")
    parser.add_argument("--m", type=int, default=defaults.m, help="exposures")
    parser.add_argument("--tune", type=int, default=defaults.tune)
    parser.add_argument("--draws", type=int, default=defaults.draws)
    parser.add_argument("--keep", type=int, default=defaults.keep, help="thinned draws ranked (L)")
    parser.add_argument("--bins", type=int, default=10, help="rank bins of the chi-square test")
    parser.add_argument("--alpha", type=float, default=0.01, help="per variant (Bonferroni)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: cores)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, default=None, help="default: models/sbc-<time>")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument(
        "--prior-recovery",
        action="store_true",
        help="instead of SBC: BKMR with the likelihood off and with constant exposures",
    )
    parser.add_argument(
        "--reference",
        nargs="+",
        choices=REFERENCE_VARIANTS,
        help="instead of SBC: Gibbs vs the PyMC declaration on weak-signal data (n=80)",
    )
    args = parser.parse_args(argv)
    args.out = args.out or Path("models") / f"sbc-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.out.exists() and not args.overwrite:
        parser.error(f"{args.out} exists; pass --overwrite to replace it")
    return args


def prior_recovery() -> int:
    """Every BKMR variant's draws against its prior, in Monte Carlo standard errors."""
    tables = [recover(v, likelihood=False) for v in PRIOR_VARIANTS]
    tables += [recover(v, likelihood=True, seed=4) for v in ("exact", "hierarchical")]
    table = pd.concat(tables, ignore_index=True)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    worst = table["z"].abs().max()
    print(f"\n{len(table)} checks, max |z| = {worst:.2f} (limit 4)")
    return 0 if worst < 4 else 1


def reference(variants: list[str], seed: int) -> int:
    """Gibbs (4 x (1,000 + 3,000)) against PyMC's compound step (4 x (1,500 + 1,500))."""
    failed = False
    for variant in variants:
        case = weak_signal_design(variant, n=80, seed=0)
        priors = bkmr.default_priors(case.spec, case.design.family)
        gibbs = SamplerSpec(chains=4, tune=1000, draws=3000, seed=seed)
        exact = SamplerSpec(chains=4, tune=1500, draws=1500, seed=seed + 1, progressbar=False)
        fast, declared = fit_both(case, priors, gibbs, exact)
        table = agreement(fast, declared, case)
        print(f"\n{variant}:\n{table.to_string(index=False, float_format=lambda v: f'{v:.3f}')}")
        convergence = reference_convergence(declared, case)
        print(
            f"reference: max R-hat {convergence['rhat'].max():.3f}, "
            f"min bulk ESS {convergence['ess_bulk'].min():.0f}"
        )
        failed |= bool((table["z"].abs() >= 3).any())
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.prior_recovery:
        return prior_recovery()
    if args.reference:
        return reference(args.reference, args.seed)
    settings = SbcSettings(
        n=args.n, m=args.m, tune=args.tune, draws=args.draws, keep=args.keep, seed=args.seed
    )
    start = time.perf_counter()
    ranks = run_sbc(args.variants, args.replicates, settings, args.workers, progress_printer(start))
    table = uniformity_table(ranks, args.bins, args.alpha)
    with atomic_folder(args.out, overwrite=args.overwrite, kind="calibrate") as folder:
        write_sbc(folder, ranks, table, args.bins, settings)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    verdicts = variant_verdicts(table)
    print(f"\n{verdicts.to_string(index=False, float_format=lambda v: f'{v:.4g}')}")
    print(f"\nwrote {args.out}/ ({time.perf_counter() - start:.0f} s)")
    return 0 if verdicts["pass"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
