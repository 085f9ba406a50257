"""Compare run folders: python scripts/compare.py RUN_A RUN_B [RUN_C ...] [--out DIR].

Aligns the runs' headline tables (BKMR PIPs, overall risk and h curves, BWQS weights and index
effects, GLM effects, qgcomp psi and weights: `compare.HEADLINES`, chosen by each run's model),
each quantity on one statistic in every run (their shared point estimate, else the mean or
median all report),
prints the config differences and the conclusions that change against RUN_A, and writes
comparison.csv, config_diff.csv, changes.csv/.txt and figures to a new folder (default:
comparisons/<A>-vs-<B> beside RUN_A). Exit codes: 0 done, 2 a path that is not a
run folder or another bad input (nothing written), 3 an unexpected failure, 130 interrupted.
"""

import argparse
import sys
from pathlib import Path

from bayesmetal.cli import guarded  # sets matplotlib's file backend; maps errors to exit codes
from bayesmetal.compare import compare, default_out, write


@guarded("compare")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare run folders: headline tables side by side, what changed."
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folders; the first is the reference"
    )
    parser.add_argument(
        "--out", help="folder to write (default: comparisons/<A>-vs-<B> beside RUN_A)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing comparison --out"
    )
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two run folders")
    paths = [Path(p) for p in args.runs]
    result = compare(paths)
    out = Path(args.out) if args.out else default_out(paths)
    written = write(result, out, overwrite=args.overwrite)
    print(result.text())
    print(f"\nwrote {out}/: {' '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
