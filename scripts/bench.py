"""Benchmark configured fits: wall time, min ESS, ESS/s, R-hat, divergences.

    python scripts/bench.py configs/bwqs_lumbar.yaml configs/glm_multi_lumbar.yaml
    python scripts/bench.py --bkmr 300:exact 1000:exact 1591:exact 5000:50 20000:50 \
        --chains 2 --tune 500 --draws 500

The BKMR mode fits simulated data (M=7, 3 covariates, known h with an interaction; 4 active
exposures) at each n:knots setting and reports wall time, seconds per iteration per chain, min
bulk ESS over r and sigma2, ESS/s, max R-hat, peak memory and PIPs against the truth.

`sample_s` is PyMC's compile + sampling time of every fit; `summarise_s` the diagnostics,
tables, figures and report.html after it (`summarise_share` = summarise_s / sample_s);
`wall_s` adds reading data and building the design. Run it twice to see the time with
PyTensor's compile cache warm.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

from bayesmetal.benchmark import bench_configs
from bayesmetal.bkmr.bench import bench_one
from bayesmetal.quiet import quiet_dependencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument(
        "--set", action="append", default=[], help="override, e.g. sampler.chains=2"
    )
    parser.add_argument("--bkmr", nargs="+", metavar="N:KNOTS", help="e.g. 1000:exact 5000:50")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args()
    with quiet_dependencies():
        return run(args)


def run(args: argparse.Namespace) -> int:
    """Print one table per mode, as the rows come in."""
    if args.configs:
        print(bench_configs(args.configs, args.set).to_string(index=False))
    if args.bkmr:
        rows = []
        for setting in args.bkmr:
            n, _, knots = setting.partition(":")
            k = None if knots in ("", "exact") else int(knots)
            rows.append(bench_one(int(n), k, args.chains, args.tune, args.draws))
            print(pd.DataFrame(rows).to_string(index=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
