"""Command-line entry points; the only module that reads argv."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt

from bayesmetal import __version__
from bayesmetal.cohort import AnalysisTable, load_cohort
from bayesmetal.config import RunConfig, load_config
from bayesmetal.errors import BayesmetalError
from bayesmetal.plots import correlation_heatmap
from bayesmetal.runs import atomic_folder
from bayesmetal.summaries import describe


def resolve_data_dir(config: RunConfig, override: str | None) -> Path:
    """The NHANES folder: --data-dir wins over the config's data.nhanes_dir."""
    return Path(override) if override else Path(config.data.nhanes_dir)


def write_descriptives(table: AnalysisTable, config: RunConfig, folder: Path) -> None:
    """flow, Table 1, Table 2, correlations (CSV), heatmap (PNG) and provenance (JSON)."""
    table.flow.to_csv(folder / "flow.csv", index=False)
    describe.table1(table, config.cohort.group_by).to_csv(folder / "table1.csv", index=False)
    describe.table2(table).to_csv(folder / "table2.csv", index=False)
    corr = describe.correlations(table)
    corr.to_csv(folder / "correlations.csv")
    fig = correlation_heatmap(corr, title=f"{config.cohort.name}: log exposures")
    fig.savefig(folder / "correlations.png", dpi=120)
    plt.close(fig)
    provenance = {
        "bayesmetal": __version__,
        "config": config.source,
        "cohort": config.cohort.name,
        "n": len(table.frame),
        "weights": table.weights,
        "data_files_sha256": table.sources,
    }
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=2))


def describe_main(argv: list[str] | None = None) -> int:
    """`describe.py CONFIG --out DIR`: descriptive tables of a cohort."""
    parser = argparse.ArgumentParser(description="Descriptive tables of a configured cohort.")
    parser.add_argument("config", help="YAML file with a cohort: section")
    parser.add_argument("--out", required=True, help="folder to write (created atomically)")
    parser.add_argument("--data-dir", help="NHANES folder (overrides data.nhanes_dir)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        table = load_cohort(config.cohort, resolve_data_dir(config, args.data_dir))
        with atomic_folder(Path(args.out), overwrite=args.overwrite) as folder:
            write_descriptives(table, config, folder)
    except BayesmetalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table.flow.to_string(index=False))
    print(f"\nwrote {args.out}: flow.csv table1.csv table2.csv correlations.csv/.png")
    return 0


def fetch_main(argv: list[str] | None = None) -> int:
    """`fetch_nhanes.py --cycles ... --components ... --dest DIR`: download CDC files."""
    from bayesmetal.fetch import CDC_BASE_URL, fetch

    parser = argparse.ArgumentParser(description="Download public NHANES .XPT files from CDC.")
    parser.add_argument("--cycles", nargs="+", required=True, help="e.g. 2013-2014 2017-2020")
    parser.add_argument("--components", nargs="+", required=True, help="e.g. DEMO PBCD DXX")
    parser.add_argument("--dest", default="data/nhanes", help="folder with one sub-folder a cycle")
    parser.add_argument("--base-url", default=CDC_BASE_URL, help="server holding the files")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args(argv)
    try:
        results = fetch(args.cycles, args.components, Path(args.dest), args.base_url, args.timeout)
    except BayesmetalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for result in results:
        print(f"{result.status:>10}  {result.path}  ({result.size} bytes)")
    return 0


def default_run_folder(config: RunConfig, config_path: str) -> Path:
    """models/<config name>-<YYYYmmdd-HHMMSS> unless output.name is set."""
    name = config.output.name or f"{Path(config_path).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Path(config.output.root) / name


def fit_main(argv: list[str] | None = None) -> int:
    """`fit.py CONFIG`: fit the configured model and write a complete run folder."""
    from bayesmetal import workflow
    from bayesmetal.runs import write_run

    parser = argparse.ArgumentParser(description="Fit a configured Bayesian mixture model.")
    parser.add_argument("config", help="YAML run configuration")
    parser.add_argument("--out", help="run folder (default: output.root/<config>-<time>)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value, e.g. --set sampler.draws=500",
    )
    parser.add_argument("--data-dir", help="NHANES folder (overrides data.nhanes_dir)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="build the model, print it and a prior predictive check; no sampling",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    parser.add_argument(
        "--extend",
        metavar="RUN",
        help="continue the BKMR run in folder RUN by sampler.draws more draws per chain "
        "(e.g. --set sampler.draws=2000); writes a new run folder",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.set)
        planned = workflow.plan(config, Path(args.data_dir) if args.data_dir else None)
        print(planned.table.flow.to_string(index=False), end="\n\n")
        for note in planned.design.notes:
            print(f"note: {note}")
        if args.dry_run:
            for fit in planned.fits:
                shown = (
                    fit.model.str_repr()
                    if fit.model is not None
                    else (f"sampled by its own runner; priors: {planned.priors}")
                )
                print(f"--- model {fit.label}\n{shown}\n")
            print("prior predictive check (outcome scale):")
            print(workflow.prior_predictive(planned).to_string(index=False))
            return 0
        out = Path(args.out) if args.out else default_run_folder(config, args.config)
        if out.exists() and not args.overwrite:
            raise BayesmetalError(
                f"run folder {out} already exists; pass --overwrite to replace it"
            )
        if args.extend:
            from bayesmetal.arviz_api import load_idata

            previous = Path(args.extend) / "idata.nc"
            if not previous.is_file():
                raise BayesmetalError(f"--extend: {previous} not found")
            results = workflow.extend(planned, load_idata(str(previous)))
        else:
            results = workflow.fit(planned)
        resolved = config.model_dump(mode="json", by_alias=True)
        with atomic_folder(out, overwrite=args.overwrite) as folder:
            write_run(folder, results, resolved, args.set)
    except BayesmetalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(results.verdict)
    for name, table in results.tables.items():
        print(f"\n{name}:\n{table.to_string(index=False, float_format=lambda v: f'{v:.4g}')}")
    print(f"\nwrote {out}/ (report.html, idata, tables, figures)")
    return 0
