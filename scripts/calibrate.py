"""Simulation-based calibration (SBC) of the samplers, variant by variant.

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

from bayesmetal.calibration import (
    VARIANTS,
    SbcSettings,
    run_sbc,
    uniformity_table,
    variant_verdicts,
    write_sbc,
)
from bayesmetal.calibration.runner import progress_printer
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
    args = parser.parse_args(argv)
    args.out = args.out or Path("models") / f"sbc-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.out.exists() and not args.overwrite:
        parser.error(f"{args.out} exists; pass --overwrite to replace it")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    settings = SbcSettings(
        n=args.n, m=args.m, tune=args.tune, draws=args.draws, keep=args.keep, seed=args.seed
    )
    start = time.perf_counter()
    ranks = run_sbc(args.variants, args.replicates, settings, args.workers, progress_printer(start))
    table = uniformity_table(ranks, args.bins, args.alpha)
    with atomic_folder(args.out, overwrite=args.overwrite) as folder:
        write_sbc(folder, ranks, table, args.bins, settings)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    verdicts = variant_verdicts(table)
    print(f"\n{verdicts.to_string(index=False, float_format=lambda v: f'{v:.4g}')}")
    print(f"\nwrote {args.out}/ ({time.perf_counter() - start:.0f} s)")
    return 0 if verdicts["pass"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
