"""Running a study's fits: each is `fit.py` on its generated config in a process of its own,
one after another or as independent tasks on Dask (`distributed`): a LocalCluster on this
machine by default, or any scheduler's address, the same code either way.

A separate process per fit keeps every engine as it runs from the command line (BKMR's chains
are processes of their own, which a daemonic Dask worker could not start) and lets a failed
fit fail alone, its output kept in `logs/<label>.log`. Fits already complete in the study
folder are not submitted again (`Study.done`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bayesmetal.study import Study, StudyFit, absolute_paths, fit_config_path, write_config

FIT = "import sys\nfrom bayesmetal.cli import fit_main\nsys.exit(fit_main(sys.argv[1:]))"
DESCRIBE = (
    "import sys\nfrom bayesmetal.cli import describe_main\nsys.exit(describe_main(sys.argv[1:]))"
)
DESCRIBE_LABEL = "describe"


@dataclass(frozen=True)
class Task:
    """One process to run: a fit (or the cohort's descriptives) into its folder."""

    label: str
    script: str
    config: Path
    out: Path
    log: Path
    extra: tuple[str, ...] = ()

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script, str(self.config), "--out", str(self.out)]


@dataclass(frozen=True)
class Outcome:
    label: str
    code: int
    seconds: float
    log: Path


def run_task(task: Task) -> Outcome:
    """Run one task to its end, its output into its log (on whichever machine runs it)."""
    task.log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with task.log.open("w") as log:
        code = subprocess.run(
            [*task.command(), *task.extra], stdout=log, stderr=subprocess.STDOUT, check=False
        ).returncode
    return Outcome(task.label, code, time.perf_counter() - start, task.log)


def pending_tasks(study: Study, cores_per_fit: int | None = None) -> list[Task]:
    """The tasks still to run, their configs written: the descriptives, then the fits in the
    study's order (unweighted before their survey twins, so a survey run finds its twin)."""
    tasks = []
    logs = study.folder / "logs"
    describe = study.describe_mapping
    if describe is not None and not study.describe_folder.is_dir():
        config = study.folder / "configs" / f"{DESCRIBE_LABEL}.yaml"
        write_config(absolute_paths(describe), config)
        tasks.append(
            Task(
                DESCRIBE_LABEL,
                DESCRIBE,
                config,
                study.describe_folder,
                logs / f"{DESCRIBE_LABEL}.log",
            )
        )
    extra = ("--set", "sampler.progressbar=false")
    if cores_per_fit is not None:
        extra += ("--set", f"sampler.cores={cores_per_fit}")
    for fit in sorted(study.fits, key=lambda f: f.survey):
        if study.done(fit):
            continue
        config = fit_config_path(study, fit)
        write_config(absolute_paths(fit.mapping), config)
        tasks.append(
            Task(fit.label, FIT, config, study.fit_folder(fit), logs / f"{fit.label}.log", extra)
        )
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
    the cluster at `scheduler`) and report each as it finishes."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = Client(cluster if cluster is not None else scheduler)
    try:
        futures = [
            client.submit(run_task, task, key=f"fit-{task.label}", pure=False) for task in tasks
        ]
        outcomes = []
        for future in as_completed(futures):
            outcomes.append(future.result())
            report(outcomes[-1])
        return outcomes
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def cores_for(workers: int) -> int:
    """Processes a fit's chains may use when `workers` fits share this machine."""
    return max(1, (os.cpu_count() or 1) // workers)


def fit_of(study: Study, label: str) -> StudyFit | None:
    return next((f for f in study.fits if f.label == label), None)
