"""Running a study's fits: each is `fit.py` on its generated config in a process of its own,
one after another or as independent tasks on Dask (`distributed`): a LocalCluster on this
machine by default, or any scheduler's address, the same code either way.

A separate process per fit keeps every engine as it runs from the command line (BKMR's chains
are processes of their own, which a daemonic Dask worker could not start) and lets a failed
fit fail alone, its output kept in `logs/<label>.log`. Fits already complete in the study
folder are not submitted again (`Study.done`); a fit whose summaries failed has them redone
from its saved posterior (`fit.py --summarise`). A survey fit waits for its unweighted twin,
so that its report finds it.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bayesmetal.runs import FAILURE_FILE
from bayesmetal.study import Study, StudyFit, absolute_paths, fit_config_path, write_config

# what a task's process runs: fit.py or describe.py, wherever bayesmetal is installed
FIT = "import sys; from bayesmetal.cli import fit_main as m; sys.exit(m(sys.argv[1:]))"
DESCRIBE = "import sys; from bayesmetal.cli import describe_main as m; sys.exit(m(sys.argv[1:]))"
DESCRIBE_LABEL = "describe"
STOP_WAIT_S = 30  # how long a stopped task's process may take to clean up after SIGINT


@dataclass(frozen=True)
class Task:
    """One process to run: fit.py (or describe.py) with its arguments; `after`: the label of
    a task it must wait for (a survey fit's unweighted twin)."""

    label: str
    script: str
    args: tuple[str, ...]
    log: Path
    after: str | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script, *self.args]


@dataclass(frozen=True)
class Outcome:
    label: str
    code: int
    seconds: float
    log: Path


def run_task(task: Task, *_after: Outcome) -> Outcome:
    """Run one task to its end, its output into its log (on whichever machine runs it). An
    interrupt is passed on to the process, which is waited for, so that it removes its own
    half-written folder."""
    task.log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with task.log.open("w") as log:
        process = subprocess.Popen(
            task.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait()
        except BaseException:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
    return Outcome(task.label, code, time.perf_counter() - start, task.log)


def _fit_task(study: Study, fit: StudyFit, settings: tuple[str, ...]) -> Task:
    """fit.py on the fit's config, or --summarise where only its summaries failed."""
    folder = study.fit_folder(fit)
    log = study.folder / "logs" / f"{fit.label}.log"
    after = fit.twin_label if fit.survey else None
    if (folder / FAILURE_FILE).is_file():
        return Task(fit.label, FIT, ("--summarise", str(folder)), log, after)
    config = fit_config_path(study, fit)
    write_config(absolute_paths(fit.mapping), config)
    return Task(fit.label, FIT, (str(config), "--out", str(folder), *settings), log, after)


def pending_tasks(
    study: Study, cores_per_fit: int | None = None, only: list[str] | None = None
) -> list[Task]:
    """The tasks still to run, their configs written: the descriptives, then the fits in the
    study's order, unweighted before survey ones; with `only`, the fits whose label matches
    one of those shell patterns."""
    tasks = []
    describe = study.describe_mapping
    if describe is not None and not study.describe_done:
        config = study.folder / "configs" / f"{DESCRIBE_LABEL}.yaml"
        write_config(absolute_paths(describe), config)
        args = (str(config), "--out", str(study.describe_folder), "--overwrite")
        log = study.folder / "logs" / f"{DESCRIBE_LABEL}.log"
        tasks.append(Task(DESCRIBE_LABEL, DESCRIBE, args, log))
    settings = ("--set", "sampler.progressbar=false")
    if cores_per_fit is not None:
        settings += ("--set", f"sampler.cores={cores_per_fit}")
    pending = [f for f in sorted(study.fits, key=lambda f: f.survey) if not study.done(f)]
    if only:
        pending = [f for f in pending if any(fnmatch.fnmatchcase(f.label, p) for p in only)]
    labels = {f.label for f in pending}
    for fit in pending:
        task = _fit_task(study, fit, settings)
        if task.after not in labels:  # the twin is done already (or not in this study)
            task = Task(task.label, task.script, task.args, task.log)
        tasks.append(task)
    return tasks


def run_sequential(tasks: Iterable[Task], report: Callable[[Outcome], None]) -> list[Outcome]:
    outcomes = []
    for task in tasks:
        outcomes.append(run_task(task))
        report(outcomes[-1])
    return outcomes


def run_dask(
    tasks: list[Task],
    report: Callable[[Outcome], None],
    scheduler: str | None = None,
    workers: int = 2,
) -> list[Outcome]:
    """Submit every task to Dask (a LocalCluster of `workers` single-threaded processes, or
    the cluster at `scheduler`), each after the task it waits for, and report each as it
    finishes; a task Dask could not run (its worker died) is reported as failed."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = Client(cluster if cluster is not None else scheduler)
    futures: dict[str, object] = {}
    try:
        for task in tasks:  # a twin is always submitted before the fit that waits for it
            waits = [futures[task.after]] if task.after in futures else []
            futures[task.label] = client.submit(run_task, task, *waits, pure=False, retries=0)
        by_future = {future: label for label, future in futures.items()}
        logs = {task.label: task.log for task in tasks}
        outcomes = []
        for future in as_completed(list(futures.values())):
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - the study goes on without this fit
                label = by_future[future]
                outcome = Outcome(label, -1, 0.0, logs[label])
                note = f"\nthe task did not run to its end on Dask: {type(exc).__name__}: {exc}\n"
                with logs[label].open("a") as log:
                    log.write(note)
            outcomes.append(outcome)
            report(outcome)
        return outcomes
    except BaseException:
        client.cancel(list(futures.values()))
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def cores_for(workers: int) -> int:
    """Processes a fit's chains may use when `workers` fits share this machine."""
    return max(1, (os.cpu_count() or 1) // workers)


def fit_of(study: Study, label: str) -> StudyFit | None:
    return next((f for f in study.fits if f.label == label), None)
