"""Benchmark configured fits: wall time, min ESS, ESS/s, R-hat, divergences.

    python scripts/bench.py configs/bwqs_lumbar.yaml configs/glm_multi_lumbar.yaml

`sample_s` is PyMC's compile + sampling time of every fit; `wall_s` adds reading data and
building the design. Run it twice to see the time with PyTensor's compile cache warm.
"""

import argparse
import sys
from pathlib import Path

from bayesmetal.benchmark import bench_configs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument(
        "--set", action="append", default=[], help="override, e.g. sampler.chains=2"
    )
    args = parser.parse_args()
    print(bench_configs(args.configs, args.set).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
