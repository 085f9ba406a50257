"""Command-line entry points; the only module that reads argv."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from bayesmetal import __version__
from bayesmetal.cohort import AnalysisTable, load_cohort
from bayesmetal.config import RunConfig, load_config
from bayesmetal.errors import BayesmetalError
from bayesmetal.plots import correlation_heatmap
from bayesmetal.runs import FAILURE_FILE, atomic_folder
from bayesmetal.summaries import describe

if TYPE_CHECKING:
    from bayesmetal.arviz_api import InferenceData
    from bayesmetal.workflow import Plan, Results


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


def write_run_folder(
    dest: Path,
    overwrite: bool,
    write_posterior: Callable[[Path], None],
    planned: Plan,
    idatas: dict[str, InferenceData],
) -> Results | Exception:
    """Posterior first, then summaries, in a folder renamed into place at the end.

    An error in the summaries still completes the folder (posterior, config and
    summaries_failed.txt with the traceback) and is returned; an interrupt there does the same
    and is then re-raised. A failure while writing the posterior leaves nothing.
    """
    from bayesmetal import workflow
    from bayesmetal.runs import record_failure, write_summaries

    failure: BaseException | None = None
    with atomic_folder(dest, overwrite=overwrite) as folder:
        write_posterior(folder)
        try:
            results = workflow.summarise(planned, idatas)
            write_summaries(folder, results)
        except (Exception, KeyboardInterrupt) as exc:
            failure = exc
            record_failure(folder, traceback.format_exc())
    if isinstance(failure, KeyboardInterrupt):
        raise failure
    return failure or results


def report_run(outcome: Results | Exception, folder: Path) -> int:
    """Print the verdict and tables (exit code 0), or one line on failed summaries (3)."""
    if isinstance(outcome, Exception):
        reason = (str(outcome).splitlines() or [""])[0]
        print(
            f"error: summaries failed ({type(outcome).__name__}: {reason}); the posterior is "
            f"saved in {folder}/ (traceback in {FAILURE_FILE}); "
            f"retry with: python scripts/fit.py --summarise {folder}",
            file=sys.stderr,
        )
        return 3
    print(outcome.verdict)
    for name, table in outcome.tables.items():
        print(f"\n{name}:\n{table.to_string(index=False, float_format=lambda v: f'{v:.4g}')}")
    print(f"\nwrote {folder}/ (report.html, idata, tables, figures)")
    return 0


def summarise_run(run: Path) -> int:
    """`fit.py --summarise RUN`: rewrite RUN's diagnostics, tables, figures and report from its
    idata and saved config alone (no data files), swapping the new folder into place."""
    from bayesmetal import workflow
    from bayesmetal.runs import copy_posterior, load_run

    try:
        idatas = load_run(run)
        planned = workflow.plan_from_run(idatas)
        outcome = write_run_folder(
            run, True, lambda folder: copy_posterior(run, folder), planned, idatas
        )
    except BayesmetalError as exc:
        print(f"error: --summarise {run}: {exc}", file=sys.stderr)
        return 2
    return report_run(outcome, run)


def fit_main(argv: list[str] | None = None) -> int:
    """`fit.py CONFIG`: fit the configured model and write a complete run folder.

    Exit codes: 0 done; 2 an error before the posterior was saved (nothing written);
    3 the posterior is saved but summaries failed (retry with --summarise RUN).
    """
    from bayesmetal import workflow
    from bayesmetal.runs import write_posterior

    parser = argparse.ArgumentParser(description="Fit a configured Bayesian mixture model.")
    parser.add_argument("config", nargs="?", help="YAML run configuration (not with --summarise)")
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
    parser.add_argument(
        "--summarise",
        metavar="RUN",
        help="recompute the diagnostics, tables, figures and report of run folder RUN from "
        "its saved posterior and config (no config argument, no data files needed)",
    )
    args = parser.parse_args(argv)
    if args.summarise:
        if args.config or args.set or args.extend or args.dry_run or args.out:
            parser.error("--summarise RUN takes no config, --set, --out, --extend or --dry-run")
        return summarise_run(Path(args.summarise))
    if args.config is None:
        parser.error("the following arguments are required: config (or --summarise RUN)")
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
            idatas = workflow.extend(planned, load_idata(str(previous)))
        else:
            idatas = workflow.sample_fits(planned)
        resolved = config.model_dump(mode="json", by_alias=True)
        outcome = write_run_folder(
            out,
            args.overwrite,
            lambda folder: write_posterior(folder, planned, idatas, resolved, args.set),
            planned,
            idatas,
        )
    except BayesmetalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return report_run(outcome, out)
