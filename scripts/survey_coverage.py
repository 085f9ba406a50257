"""Coverage of design-adjusted 95% intervals on a simulated complex survey (issue #10).

    python scripts/survey_coverage.py --replicates 200 --models glm bwqs --out models/coverage

Draws R two-stage samples of one seeded finite population (`bayesmetal.survey_simulation`),
fits each model weighted and design-adjusted, and unweighted, and prints per parameter the
coverage of the population (census-fit) value with its Monte Carlo SE, the bias and the mean
interval width; 'pseudo' is the weighted fit before the design adjustment. Writes
replicates.csv (one row per replicate, model, parameter and weighting) and coverage.csv into
the out folder after every replicate, so an interrupted run keeps what it finished.
"""

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from bayesmetal.quiet import quiet_dependencies
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.survey_simulation import (
    MODELS,
    coverage_replicate,
    coverage_table,
    make_population,
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1, help="seed of the samples and the MCMC")
    parser.add_argument("--population-seed", type=int, default=20261123)
    parser.add_argument("--out", type=Path, required=True, help="folder for the CSV files")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the out folder's replicates.csv and run only the replicates it lacks "
        "(replicate r's sample and seeds depend on r alone)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    population = make_population(seed=args.population_seed)
    sampler = SamplerSpec(chains=args.chains, tune=args.tune, draws=args.draws, progressbar=False)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"population: {population.n:,} persons; census values {population.truth}")
    results, first = [], 0
    if args.resume and (args.out / "replicates.csv").is_file():
        results = [pd.read_csv(args.out / "replicates.csv")]
        first = int(results[0]["replicate"].max()) + 1
    start = time.perf_counter()
    for r in range(first, args.replicates):
        with quiet_dependencies():
            rows = coverage_replicate(population, r, tuple(args.models), sampler, args.seed)
        results.append(rows)
        every = pd.concat(results, ignore_index=True)
        every.to_csv(args.out / "replicates.csv", index=False)
        coverage_table(every).to_csv(args.out / "coverage.csv", index=False)
        elapsed = time.perf_counter() - start
        per = elapsed / (r + 1 - first)
        print(f"replicate {r + 1}/{args.replicates}: {per:.1f} s per replicate", flush=True)
    table = coverage_table(pd.concat(results, ignore_index=True))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
