"""Command-line entry points; the only module that reads argv."""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

# The commands draw to files only. Set here, in the application, not in the library: a
# notebook that imports bayesmetal keeps its inline backend.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bayesmetal import __version__  # noqa: E402
from bayesmetal.cohort import AnalysisTable, load_cohort  # noqa: E402
from bayesmetal.config import load_config  # noqa: E402
from bayesmetal.engines import PYMC  # noqa: E402
from bayesmetal.errors import BayesmetalError  # noqa: E402
from bayesmetal.plots import correlation_heatmap  # noqa: E402
from bayesmetal.priors import as_mappings  # noqa: E402
from bayesmetal.quiet import quiet_dependencies  # noqa: E402
from bayesmetal.run_schema import RunConfig  # noqa: E402
from bayesmetal.runs import FAILURE_FILE, atomic_folder, check_dest  # noqa: E402
from bayesmetal.summaries import describe  # noqa: E402

if TYPE_CHECKING:
    from bayesmetal.arviz_api import InferenceData
    from bayesmetal.stages import Plan, Results


EXIT_OK, EXIT_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED = 0, 2, 3, 130
DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def log_folder() -> Path:
    """Where tracebacks of unexpected errors go: $BAYESMETAL_LOG_DIR, else the user's cache."""
    configured = os.environ.get("BAYESMETAL_LOG_DIR")
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "bayesmetal" / "logs"


def write_log(command: str, trace: str) -> Path | None:
    """Save a traceback as <log folder>/<command>-<time>-<pid>.log; None if that fails too."""
    path = log_folder() / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"bayesmetal {__version__}\nargv: {sys.argv}\n\n{trace}")
    except OSError:
        return None
    return path


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("terminated by SIGTERM")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (sent by `timeout`, job schedulers and `kill`) stops a run as Ctrl-C does:
    temporary folders removed, sampler workers stopped, exit 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def guarded(command: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Wrap a CLI entry point so that no failure ends in a bare traceback.

    Exit codes: 0 done; 2 bad input or configuration (nothing written); 3 a failure at run
    time (full disk, a bug: one line here, the traceback in a log file); 130 interrupted
    (Ctrl-C: nothing half-written is left).
    """

    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(argv: list[str] | None = None) -> int:
            try:
                with terminate_as_interrupt():
                    return main(argv)
            except BayesmetalError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_INPUT
            except KeyboardInterrupt as exc:
                detail = f" ({exc})" if str(exc) else ""
                print(
                    f"interrupted{detail}: stopped cleanly, no result was written",
                    file=sys.stderr,
                )
                return EXIT_INTERRUPTED
            except OSError as exc:
                if exc.errno not in DISK_FULL:
                    return _unexpected(command, exc)
                print(
                    f"error: the disk is full ({exc.filename or 'while writing'}); nothing "
                    "was written: free some space and run again",
                    file=sys.stderr,
                )
                return EXIT_FAILURE
            except Exception as exc:
                return _unexpected(command, exc)

        return run

    return wrap


def _unexpected(command: str, exc: BaseException) -> int:
    log = write_log(command, traceback.format_exc())
    where = f"traceback in {log}" if log else "the traceback could not be saved"
    reason = (str(exc).splitlines() or [""])[0]
    print(
        f"error: unexpected {type(exc).__name__}: {reason} ({where}); nothing half-written "
        "was left. Please report it with that file.",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def resolve_data_dir(config: RunConfig, override: str | None) -> Path:
    """The NHANES folder: --data-dir wins over the config's data.nhanes_dir."""
    return Path(override) if override else Path(config.data.nhanes_dir)


def write_descriptives(table: AnalysisTable, config: RunConfig, folder: Path) -> None:
    """flow, Table 1, Table 2, correlations (CSV, rounded for a paper), and with a survey design
    the weighted Table 1 and Table 2 beside them; the same tables as the sheets of tables.xlsx,
    the heatmap (PNG) and provenance (JSON, with the design)."""
    corr = describe.correlations(table)
    group_by = config.cohort.group_by
    tables = {
        "flow": table.flow,
        "table1": describe.table1(table, group_by),
        "table2": describe.table2(table),
        "correlations": corr.map(lambda r: f"{r:.2f}"),
    }
    if table.survey is not None:  # the cohort declares its survey design: population estimates
        from bayesmetal.summaries import weighted  # svy and polars: 0.6 s, describe.py only

        tables["table1_weighted"] = weighted.table1_weighted(table, group_by)
        tables["table2_weighted"] = weighted.table2_weighted(table)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=name == "correlations")
    describe.workbook(tables, folder / "tables.xlsx")
    fig = correlation_heatmap(corr, title=f"{config.cohort.name}: log exposures")
    fig.savefig(folder / "correlations.png", dpi=120)
    plt.close(fig)
    provenance = {
        "bayesmetal": __version__,
        "config": config.source,
        "cohort": config.cohort.name,
        "n": len(table.frame),
        "weights": table.weights,
        "survey_design": None if table.survey is None else table.survey.describe(),
        "data_files_sha256": table.sources,
    }
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=2))


@guarded("describe")
def describe_main(argv: list[str] | None = None) -> int:
    """`describe.py CONFIG --out DIR`: descriptive tables of a cohort."""
    parser = argparse.ArgumentParser(description="Descriptive tables of a configured cohort.")
    parser.add_argument("config", help="YAML file with a cohort: section")
    parser.add_argument("--out", required=True, help="folder to write (created atomically)")
    parser.add_argument("--data-dir", help="NHANES folder (overrides data.nhanes_dir)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if config.cohort is None:
        raise BayesmetalError(f"{args.config}: describe.py needs a cohort: section (not a table)")
    data_dir = resolve_data_dir(config, args.data_dir)
    table = load_cohort(config.cohort, data_dir, config.cohort.survey)
    with atomic_folder(Path(args.out), overwrite=args.overwrite, kind="describe") as folder:
        write_descriptives(table, config, folder)
    print(table.flow.to_string(index=False))
    weighted_files = ""
    if table.survey is not None:
        print(f"\nsurvey design: {table.survey.describe()}")
        weighted_files = " table1_weighted.csv table2_weighted.csv"
    print(
        f"\nwrote {args.out}: flow.csv table1.csv table2.csv{weighted_files} "
        "correlations.csv/.png tables.xlsx (one sheet a table)"
    )
    return 0


@guarded("fetch")
def fetch_main(argv: list[str] | None = None) -> int:
    """`fetch_nhanes.py --cycles ... --components ... --dest DIR`: download CDC files."""
    from bayesmetal.fetch import CDC_BASE_URL, FetchResult, fetch

    parser = argparse.ArgumentParser(description="Download public NHANES .XPT files from CDC.")
    parser.add_argument("--cycles", nargs="+", required=True, help="e.g. 2013-2014 2017-2020")
    parser.add_argument("--components", nargs="+", required=True, help="e.g. DEMO PBCD DXX")
    parser.add_argument("--dest", default="data/nhanes", help="folder with one sub-folder a cycle")
    parser.add_argument("--base-url", default=CDC_BASE_URL, help="server holding the files")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args(argv)

    def say(result: FetchResult) -> None:  # as each file is done: a failure later keeps them
        print(f"{result.status:>10}  {result.path}  ({result.size} bytes, {result.verification})")

    fetch(args.cycles, args.components, Path(args.dest), args.base_url, args.timeout, say)
    return 0


def default_run_folder(config: RunConfig, config_path: str) -> Path:
    """models/<config name>-<YYYYmmdd-HHMMSS> unless output.name is set."""
    name = config.output.name or f"{Path(config_path).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Path(config.output.root) / name


def write_run_folder(
    dest: Path,
    overwrite: bool,
    posterior: Callable[[Path], dict[str, InferenceData]],
    planned: Plan,
    keep_failed: bool = True,
) -> Results | BaseException:
    """Posterior first, then summaries, in a folder renamed into place at the end.

    `posterior` samples (or loads) the posterior and writes its files into the folder; it runs
    inside atomic_folder, so `dest` is locked against a second writer while chains run.

    An error or an interrupt in the summaries is returned. With `keep_failed` the folder is
    still completed (posterior, config and summaries_failed.txt with the traceback), so a new
    posterior is never lost; without it (--summarise, whose posterior is already safe in
    `dest`) the new folder is discarded and `dest` left as it was. A failure while writing the
    posterior leaves nothing.
    """
    from bayesmetal import beside, workflow
    from bayesmetal.runs import record_failure, write_summaries

    failure: BaseException | None = None
    try:
        with atomic_folder(dest, overwrite=overwrite) as folder:
            idatas = posterior(folder)
            try:
                results = workflow.summarise(planned, idatas)
                config = beside.read_config(folder) or {}
                results = beside.with_unweighted(results, config, dest.absolute())
                write_summaries(folder, results)
            except (Exception, KeyboardInterrupt) as exc:
                failure = exc
                if not keep_failed:
                    raise _Discarded from exc
                record_failure(folder, traceback.format_exc())
    except _Discarded:
        pass
    return failure or results


class _Discarded(Exception):
    """Raised inside atomic_folder to throw away a re-summary that failed."""


def report_run(outcome: Results | BaseException, folder: Path, verbose: bool = False) -> int:
    """Print the end summary (exit code 0: the verdict and the headline tables, or with
    `verbose` every table in full), or one line on failed (3) or interrupted (130)
    summaries: the posterior is saved either way."""
    from bayesmetal import terminal

    retry = f"finish with: python scripts/fit.py --summarise {folder}"
    if isinstance(outcome, KeyboardInterrupt):
        print(
            f"interrupted during the summaries; the posterior is saved in {folder}/; {retry}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if isinstance(outcome, Exception):
        reason = (str(outcome).splitlines() or [""])[0]
        print(
            f"error: summaries failed ({type(outcome).__name__}: {reason}); the posterior is "
            f"saved in {folder}/ (traceback in {FAILURE_FILE}); {retry}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    lines = terminal.full_lines if verbose else terminal.summary_lines
    print("\n".join(lines(outcome, folder)))
    return 0


def summarise_run(run: Path, verbose: bool = False) -> int:
    """`fit.py --summarise RUN`: rewrite RUN's diagnostics, tables, figures and report from its
    idata and saved config alone (no data files), swapping the new folder into place."""
    from bayesmetal import workflow
    from bayesmetal.runs import carry_over, load_run

    try:
        idatas = load_run(run)
        planned = workflow.plan_from_run(idatas)

        def posterior(folder: Path) -> dict[str, InferenceData]:
            carry_over(run, folder)
            return idatas

        outcome = write_run_folder(run, True, posterior, planned, keep_failed=False)
    except BayesmetalError as exc:
        print(f"error: --summarise {run}: {exc}", file=sys.stderr)
        return 2
    if isinstance(outcome, BaseException):
        trace = "".join(traceback.format_exception(outcome))
        log = write_log("summarise", trace)
        what = "interrupted" if isinstance(outcome, KeyboardInterrupt) else "failed"
        print(
            f"error: --summarise {what} ({type(outcome).__name__}: {outcome}); {run}/ was left "
            f"as it was" + (f" (traceback in {log})" if log else ""),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED if isinstance(outcome, KeyboardInterrupt) else EXIT_FAILURE
    return report_run(outcome, run, verbose)


@guarded("fit")
def fit_main(argv: list[str] | None = None) -> int:
    """`fit.py CONFIG`: fit the configured model and write a complete run folder.

    Exit codes (see `guarded`): 0 done; 2 bad input or configuration, found before anything
    was written; 3 a failure at run time (if the summaries failed, the posterior is saved:
    retry with --summarise RUN); 130 interrupted.
    """
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
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print the flow table, every table in full and PyMC's messages (by default: "
        "one line of flow, progress bars and a one-screen summary; the tables are in the "
        "run folder either way)",
    )
    args = parser.parse_args(argv)
    with quiet_dependencies(args.verbose):
        return _fit(parser, args)


def _fit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The body of `fit_main`, with its arguments parsed."""
    from bayesmetal import workflow
    from bayesmetal.runs import write_posterior
    from bayesmetal.terminal import design_notes, flow_line

    if args.summarise:
        if args.config or args.set or args.extend or args.dry_run or args.out:
            parser.error("--summarise RUN takes no config, --set, --out, --extend or --dry-run")
        return summarise_run(Path(args.summarise), args.verbose)
    if args.config is None:
        parser.error("the following arguments are required: config (or --summarise RUN)")
    config = load_config(args.config, args.set)
    planned = workflow.plan(config, Path(args.data_dir) if args.data_dir else None)
    flow = planned.table.flow
    print(flow.to_string(index=False) + "\n" if args.verbose else flow_line(flow))
    for note in design_notes(planned.design.notes, config.model):
        print(f"note: {note}")
    print(flush=True)  # sampling starts after this empty line
    if args.dry_run:
        for fit in planned.fits:
            shown = (
                fit.build().str_repr()
                if fit.engine == PYMC
                else f"sampled by the {fit.engine} engine; priors: {as_mappings(planned.priors)}"
            )
            print(f"--- model {fit.label}\n{shown}\n")
        print("prior predictive check (outcome scale):")
        print(workflow.prior_predictive(planned).to_string(index=False))
        return 0
    out = Path(args.out) if args.out else default_run_folder(config, args.config)
    check_dest(out, args.overwrite)  # before hours of sampling, not after
    previous = None
    if args.extend:
        from bayesmetal.arviz_api import load_idata

        saved = Path(args.extend) / "idata.nc"
        if not saved.is_file():
            raise BayesmetalError(f"--extend: {saved} not found")
        previous = load_idata(str(saved))
    resolved = config.model_dump(mode="json", by_alias=True)

    def posterior(folder: Path) -> dict[str, InferenceData]:
        if previous is not None:
            idatas = workflow.extend(planned, previous)
        else:
            idatas = workflow.sample_fits(planned)
        write_posterior(folder, planned, idatas, resolved, args.set)
        return idatas

    outcome = write_run_folder(out, args.overwrite, posterior, planned)
    return report_run(outcome, out, args.verbose)
