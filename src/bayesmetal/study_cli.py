"""`study.py STUDY.yaml`: every fit of a study (on Dask or one after another), then the study
report; `--dry-run` lists the fits and which are already done."""

from __future__ import annotations

import argparse
import time

from bayesmetal.cli import EXIT_FAILURE, guarded
from bayesmetal.quiet import quiet_dependencies
from bayesmetal.study import Study, load_study
from bayesmetal.study_report import STATUS_OK, convergence_row, write_report
from bayesmetal.study_runner import (
    Outcome,
    cores_for,
    fit_of,
    pending_tasks,
    run_dask,
    run_sequential,
)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def plan_lines(study: Study) -> list[str]:
    """What a dry run prints: each fit, its folder and whether it is done."""
    lines = [f"study {study.spec.study}: {len(study.fits)} fits into {study.folder}/"]
    if study.describe_mapping is not None:
        state = "done" if study.describe_done else "to run"
        lines.append(f"  {'describe':<48} {state:<7} {study.describe_folder.name}")
    for fit in study.fits:
        state = "done" if study.done(fit) else "to run"
        lines.append(f"  {fit.label:<48} {state:<7} fits/{fit.folder_name}")
    return lines


@guarded("study")
def study_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every fit of a study and its report.")
    parser.add_argument("study", help="YAML study file (configs/studies/*.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="list the fits; run nothing")
    parser.add_argument(
        "--scheduler", help="a Dask scheduler's address (tcp://host:8786); default: local"
    )
    parser.add_argument(
        "--workers", type=_positive, default=2, help="local Dask workers (fits at once); default 2"
    )
    parser.add_argument(
        "--sequential", action="store_true", help="one fit after another, without Dask"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only the fits whose label matches (shell pattern, e.g. 'bkmr.*'; repeatable)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a shared run setting (sampler.draws=500)",
    )
    args = parser.parse_args(argv)
    with quiet_dependencies():
        return _study(args)


def _study(args: argparse.Namespace) -> int:
    """The body of `study_main`, with its arguments parsed."""
    study = load_study(args.study, args.overrides)
    if args.dry_run:
        print("\n".join(plan_lines(study)))
        return 0
    local = args.scheduler is None and not args.sequential
    tasks = pending_tasks(study, cores_for(args.workers) if local else None, args.only)
    reused = sum(1 for fit in study.fits if study.done(fit))
    how = (
        "one after another"
        if args.sequential
        else f"on Dask ({args.scheduler or f'local cluster, {args.workers} workers'})"
    )
    print(
        f"study {study.spec.study}: {len(tasks)} to run {how}, {reused} of "
        f"{len(study.fits)} fits reused from {study.folder}/fits/"
        + (f" (only {', '.join(args.only)})" if args.only else "")
    )
    start, failed, finished = time.perf_counter(), [], []

    def report(outcome: Outcome) -> None:
        finished.append(outcome.label)
        fit = fit_of(study, outcome.label)
        if outcome.code != 0:
            failed.append(outcome)
            state = f"FAILED (exit {outcome.code}; its output: {outcome.log})"
        else:
            state = convergence_row(study, fit)["status"] if fit is not None else "done"
        print(f"[{len(finished)}/{len(tasks)}] {outcome.label}: {state} ({outcome.seconds:.0f} s)")

    if args.sequential:
        run_sequential(tasks, report)
    elif tasks:
        run_dask(tasks, report, args.scheduler, args.workers)
    found = write_report(study)
    wall = time.perf_counter() - start
    counts = found.convergence["status"].value_counts()
    others = [f"{n} {status}" for status, n in counts.items() if status != STATUS_OK]
    verdict = "every fit converged" if not others else f"{', '.join(others)} (convergence panel)"
    print(f"wrote {study.folder}/report.html ({wall:.0f} s); {verdict}")
    return EXIT_FAILURE if failed else 0
