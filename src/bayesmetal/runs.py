"""Run folders: written into a temporary sibling and renamed into place only when complete."""

from __future__ import annotations

import errno
import fcntl
import importlib.metadata
import io
import json
import os
import platform
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import pandas as pd
import yaml
from matplotlib.figure import Figure

from bayesmetal import __version__, report
from bayesmetal.design import interval_words
from bayesmetal.errors import BayesmetalError, ConfigError
from bayesmetal.priors import as_mappings

if TYPE_CHECKING:
    from bayesmetal.arviz_api import InferenceData
    from bayesmetal.stages import Plan, Results

# what a run folder holds before any summary: all that `fit.py --summarise` needs
POSTERIOR_FILES = ("idata*.nc", "config.resolved.yaml", "flow.csv")
FAILURE_FILE = "summaries_failed.txt"
SAVED_ATTRS = {
    "config": "bayesmetal_config",
    "priors": "bayesmetal_priors",
    "provenance": "bayesmetal_provenance",
}


RUN_MARKER = ".bayesmetal-run.json"
# flock errors of a filesystem that cannot lock (e.g. Lustre mounted without -o flock)
UNLOCKABLE = {errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL}


def _owner_tag() -> str:
    """`<pid>@<host>` of this process: names its temporary folders and fills its lock files."""
    return f"{os.getpid()}@{socket.gethostname()}"


def _parse_owner(tag: str) -> tuple[int, str] | None:
    """(pid, host) of an _owner_tag, or None when `tag` is not one."""
    pid, _, host = tag.partition("@")
    return (int(pid), host) if pid.isdigit() and host else None


def _pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_gone(tag: str) -> bool:
    """Whether the writer named by `tag` provably no longer runs: it ran on this host and its
    pid is not alive. An unreadable tag or another host's writer cannot be proven gone."""
    owner = _parse_owner(tag)
    return owner is not None and owner[1] == socket.gethostname() and not _pid_alive(owner[0])


def is_run_folder(folder: Path) -> bool:
    """A folder atomic_folder completed (marker file), or a fit run folder written before the
    marker existed (idata*.nc and config.resolved.yaml)."""
    legacy = any(folder.glob("idata*.nc")) and (folder / "config.resolved.yaml").is_file()
    return (folder / RUN_MARKER).is_file() or legacy


def _locate(dest: Path) -> Path:
    """Absolute `dest` with `.`, `..` and the symlinks of its parents resolved, but not its
    own name: a `dest` that is a symlink is replaced as a link, never followed."""
    path = Path(dest).absolute()
    return path.resolve() if path.name == ".." else path.parent.resolve() / path.name


def _check_place(dest: Path, where: Path) -> None:
    """Refuse a `dest` (at `where`, from _locate) that must never become a run folder: the
    current folder or one of its parents, a folder inside a run folder (an --overwrite of
    that run would delete it), or a path below a file."""
    if Path.cwd().resolve().is_relative_to(where.resolve()):
        raise BayesmetalError(
            f"output folder {dest} is the current folder or one of its parents; refusing to "
            "replace it: choose an --out below it"
        )
    for folder in where.parents:
        if folder.exists() and not folder.is_dir():
            raise BayesmetalError(
                f"cannot create output folder {dest}: {folder} is a file, not a folder"
            )
        if is_run_folder(folder):
            raise BayesmetalError(
                f"output folder {dest} is inside the run folder {folder}; "
                "choose an --out outside it"
            )


def check_dest(dest: Path, overwrite: bool) -> None:
    """Refuse a `dest` that atomic_folder must not create or replace: see _check_place; a
    file or broken link; an existing folder without `overwrite`; with it, a non-empty folder
    that is not a run folder (such as the folder holding the runs), whose files would all be
    deleted."""
    where = _locate(dest)
    _check_place(dest, where)
    if where.is_symlink() and not where.exists():
        raise BayesmetalError(
            f"output folder {dest} is a broken symbolic link; choose another --out"
        )
    if where.exists() and not where.is_dir():
        raise BayesmetalError(f"output folder {dest} exists as a file; choose another --out")
    if not where.exists():
        return
    if not overwrite:
        raise BayesmetalError(
            f"output folder {dest} already exists; pass --overwrite to replace it"
        )
    if any(where.iterdir()) and not is_run_folder(where):
        raise BayesmetalError(
            f"output folder {dest} is not a bayesmetal run folder (no {RUN_MARKER}); refusing "
            "to replace it: choose another --out or remove it yourself"
        )


def _holder_text(tag: str) -> str:
    """`pid N` (plus `on HOST` for another host) of a lock holder's tag, for messages."""
    owner = _parse_owner(tag)
    if owner is None:
        return "pid unknown"
    pid, host = owner
    return f"pid {pid}, still running" if host == socket.gethostname() else f"pid {pid} on {host}"


def _same_file(fd: int, path: Path) -> bool:
    """Whether open descriptor `fd` is still the file at `path` (not removed or replaced)."""
    try:
        return os.path.samestat(os.fstat(fd), path.stat())
    except FileNotFoundError:
        return False


def _break_orphaned(fd: int, path: Path, tag: str) -> bool:
    """Remove the busy lock file `path` (open as `fd`) when its writer `tag` is provably gone
    (_owner_gone): then only processes it forked (PyMC's chains, multiprocessing workers),
    which inherit the flock and may outlive a killed writer, still hold it. Only the file
    still at `path` is removed, so a lock file already replaced is left alone."""
    if not (_owner_gone(tag) and _same_file(fd, path)):
        return False
    path.unlink(missing_ok=True)
    pid = tag.partition("@")[0]
    warnings.warn(
        f"{path} was held only by processes left behind by bayesmetal pid {pid}, which is "
        "gone; taking the lock over",
        stacklevel=3,
    )
    return True


def _acquire_lock(path: Path, dest: Path) -> int | None:
    """Take an exclusive non-blocking flock on `path` and write our _owner_tag into it.

    Returns the descriptor (closing it releases the lock), or None with a warning where the
    filesystem cannot lock. The holder removes `path` before releasing it, so a lock taken on
    a file that is no longer at `path` is retried on the new file: two writers never hold
    locks on different files for one `dest`. A lock whose writer is gone is broken
    (_break_orphaned). Narrow race: two writers that find the same orphaned lock at once may
    both pass the check before either removes it; the second then removes the first's new
    lock file and both write (the later rename wins; no half-written folder results).
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            tag = os.read(fd, 1024).decode(errors="replace")
            broken = _break_orphaned(fd, path, tag)
            os.close(fd)
            if broken:
                continue
            raise BayesmetalError(
                f"another bayesmetal process ({_holder_text(tag)}) is writing {dest}; "
                "wait for it or choose another --out"
            ) from None
        except OSError as exc:
            os.close(fd)
            if exc.errno not in UNLOCKABLE:
                raise
            path.unlink(missing_ok=True)  # no one can hold a lock on this filesystem
            warnings.warn(
                f"cannot lock {path} ({exc.strerror}); writing {dest} unprotected "
                "from a concurrent writer",
                stacklevel=2,
            )
            return None
        if _same_file(fd, path):
            os.ftruncate(fd, 0)
            os.write(fd, _owner_tag().encode())
            return fd
        os.close(fd)


@contextmanager
def _dest_lock(where: Path, dest: Path) -> Iterator[None]:
    """Hold the lock file `.<name>.lock` beside `where` (_locate of `dest`, which messages
    name); remove it, then release it, at the end.

    Removing it while still held keeps the folder tidy without a race (see _acquire_lock).
    """
    path = where.with_name(f".{where.name}.lock")
    fd = _acquire_lock(path, dest)
    try:
        yield
    finally:
        if fd is not None:
            path.unlink(missing_ok=True)
            os.close(fd)


def _remove_abandoned(dest: Path) -> None:
    """Remove the `.<name>.partial-<tag>.*` and `.<name>.old-<tag>.*` folders left beside
    `dest` by writers killed mid-write, when their tag proves the writer gone (_owner_gone)."""
    for stage in ("partial", "old"):
        prefix = f".{dest.name}.{stage}-"
        for path in dest.parent.iterdir():
            if not path.name.startswith(prefix):
                continue
            if _owner_gone(path.name.removeprefix(prefix).rpartition(".")[0]):
                _remove(path)


def _remove(path: Path) -> None:
    """Delete a folder, or only the link where `path` is a symlink (rmtree refuses links, and
    what a link points to is never ours to delete)."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _write_marker(folder: Path, kind: str) -> None:
    """The RUN_MARKER file that lets a later --overwrite recognise `folder` as a run folder."""
    marker = {
        "kind": kind,
        "bayesmetal": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (folder / RUN_MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _swap_in(tmp: Path, dest: Path) -> None:
    """Rename `tmp` to `dest`; an existing `dest` is first renamed aside (`.old-`, same tag)
    and deleted after, or renamed back if the swap fails."""
    if not os.path.lexists(dest):
        tmp.rename(dest)
        return
    trash = dest.with_name(tmp.name.replace(".partial-", ".old-", 1))
    dest.rename(trash)
    try:
        tmp.rename(dest)
    except BaseException:
        trash.rename(dest)
        raise
    _remove(trash)


def write_file_atomically(path: Path, content: str | bytes) -> None:
    """A file written whole or not at all: a temporary file beside it, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(dest: Path, overwrite: bool = False, kind: str = "fit") -> Iterator[Path]:
    """Yield a temporary folder that becomes `dest` only if the block finishes.

    A failure or interruption (ENOSPC, KeyboardInterrupt, ...) removes the temporary folder,
    leaves `dest` untouched and is re-raised. A completed folder carries RUN_MARKER (`kind`,
    version, time); `overwrite` replaces only such a run folder (or an empty one: check_dest).
    For the whole block a lock file beside `dest` keeps a second writer out with a clean
    error. The temporary folder is `.<name>.partial-<pid>@<host>.<random>`: a leftover of a
    killed writer is removed by the next writer of `dest` only when that pid is no longer
    alive on this host, so a live writer's folder is never deleted, even if it holds no lock.
    """
    where = _locate(dest)
    _check_place(dest, where)  # before creating any parent folder
    where.parent.mkdir(parents=True, exist_ok=True)
    with _dest_lock(where, dest):
        check_dest(dest, overwrite)
        _remove_abandoned(where)
        prefix = f".{where.name}.partial-{_owner_tag()}."
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=where.parent))
        try:
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide results from co-workers
            yield tmp
            _write_marker(tmp, kind)
            _swap_in(tmp, where)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def figure_bytes(figure: Figure) -> tuple[bytes, bytes]:
    """A figure as PNG and SVG (vector, for a paper; no date, so reproducible), closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    vector = io.BytesIO()
    with plt.rc_context({"svg.hashsalt": "bayesmetal"}):
        figure.savefig(vector, format="svg", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue(), vector.getvalue()


def save_figure(figure: Figure, path: Path) -> bytes:
    """Write a figure as PNG (`path`) and SVG (beside it, same stem), close it, and return
    the PNG's bytes (for the report)."""
    png, svg = figure_bytes(figure)
    path.write_bytes(png)
    path.with_suffix(".svg").write_bytes(svg)
    return png


def package_versions() -> dict[str, str]:
    """Versions that determine the numbers of a run."""
    names = [
        "bayesmetal",
        "pymc",
        "pytensor",
        "pymc-extras",
        "arviz",
        "numpy",
        "pandas",
        "scipy",
        "pyreadstat",
        "nutpie",
    ]
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def write_posterior(
    folder: Path,
    plan: Plan,
    idatas: dict[str, InferenceData],
    resolved_config: dict[str, Any],
    overrides: list[str],
) -> None:
    """The posterior first, before any summary can fail: idata file(s) with the resolved
    config, priors and provenance in their attributes, config.resolved.yaml and flow.csv."""
    provenance = {
        "config_file": plan.config.source,
        "overrides": overrides,
        "versions": package_versions(),
        "data_files_sha256": plan.table.sources,
        "weights": plan.table.weights,
        "n": plan.design.n,
        "design_notes": plan.design.notes,
    }
    priors = as_mappings(plan.priors)
    resolved = {**resolved_config, "priors_resolved": priors, "provenance": provenance}
    (folder / "config.resolved.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    saved = {"config": resolved_config, "priors": priors, "provenance": provenance}
    attrs = {SAVED_ATTRS[key]: json.dumps(value) for key, value in saved.items()}
    single = len(idatas) == 1
    for label, idata in idatas.items():
        idata.attrs.update(attrs | {"fit": label})
        idata.to_netcdf(str(folder / ("idata.nc" if single else f"idata_{label}.nc")))
    plan.table.flow.to_csv(folder / "flow.csv", index=False)


def write_summaries(folder: Path, results: Results) -> None:
    """Diagnostics, tables, figures and report.html beside the posterior files of `folder`."""
    plan = results.plan
    results.diagnostics.to_csv(folder / "diagnostics.csv", index=False)
    for name, table in {**results.tables, **results.files}.items():
        table.to_csv(folder / f"{name}.csv", index=False)
    pngs = {name: save_figure(fig, folder / f"{name}.png") for name, fig in results.figures.items()}
    backends = sorted({str(i.attrs.get("sampler_backend")) for i in results.idatas.values()})
    wall = sum(float(i.attrs.get("wall_time_s", 0)) for i in results.idatas.values())
    config, design = plan.config, plan.design
    sampler = config.sampler
    meta = {
        "config": config.source,
        "covariates": ", ".join(design.covariate_columns) or "none",
        "sampler": f"{', '.join(backends)}; {sampler.chains} chains x {sampler.draws} draws "
        f"({sampler.tune} tune), seed {sampler.seed}, wall {wall:.1f} s",
        "bayesmetal": __version__,
    }
    fits = len(results.idatas)
    kind = getattr(config.model, "kind", None)
    methods = {str(i.posterior.attrs.get("survey_adjustment")) for i in results.idatas.values()}
    lead = {
        "outcome": f"{design.outcome} ({design.family})",
        "exposures": ", ".join(design.exposures),
        "model": config.model.name
        + (f" {kind}" if isinstance(kind, str) else "")
        + (f" ({fits} fits)" if fits > 1 else ""),
        "n": str(design.n),
        "survey design": "none (unweighted)"
        if design.survey is None
        else "weighted, design-adjusted posterior "
        f"({'; '.join(sorted(methods))}; {interval_words(design.survey)})",
    }
    if design.survey is not None:
        meta["survey design"] = design.survey.label
    captions = {
        "covariates": f"coefficients on the linear predictor's scale ({design.family} family): "
        "numeric covariates per 1 SD, levels against the reference level; mean, median and "
        "equal-tailed interval",
        **results.captions,
    }
    lead |= results.notes
    tables = {"flow": pd.read_csv(folder / "flow.csv"), **results.tables}
    page = report.render(
        f"bayesmetal: {Path(config.source.split(' ')[0]).stem}",
        lead,
        results.verdict,
        results.diagnostics,
        tables,
        pngs,
        headline=getattr(results, "headline", ()),
        priors=as_mappings(plan.priors),
        meta=meta,
        captions=captions,
    )
    (folder / "report.html").write_text(page)


def posterior_files(folder: Path) -> list[Path]:
    """The files of a run folder that hold its posterior and configuration (POSTERIOR_FILES)."""
    return sorted({path for pattern in POSTERIOR_FILES for path in folder.glob(pattern)})


def record_failure(folder: Path, trace: str) -> None:
    """Keep only the posterior files (no half-written summaries) and write the traceback
    to summaries_failed.txt."""
    keep = set(posterior_files(folder))
    for path in folder.iterdir():
        if path in keep:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    hint = "The posterior is saved; recompute the summaries with: fit.py --summarise <this folder>"
    (folder / FAILURE_FILE).write_text(f"{trace}\n{hint}\n")


def carry_over(run: Path, folder: Path) -> None:
    """Copy all of run folder `run` into `folder` but the summaries --summarise rewrites (CSV
    tables other than flow.csv, PNG and SVG figures, report.html, the failure note, the
    marker): the posterior files, and anything a user put there, survive a re-summary."""
    posterior = set(posterior_files(run))
    for path in run.iterdir():
        rewritten = path.suffix in (".csv", ".png", ".svg") or path.name in (
            "report.html",
            FAILURE_FILE,
            RUN_MARKER,
        )
        if rewritten and path not in posterior:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.copytree(path, folder / path.name, symlinks=True)
        else:
            shutil.copy2(path, folder / path.name, follow_symlinks=False)


def load_run(run: Path) -> dict[str, InferenceData]:
    """The idata of each fit of a run folder, by fit label (idata.nc or idata_<fit>.nc)."""
    from bayesmetal.arviz_api import load_idata  # ArviZ only when a run is read

    files = sorted(Path(run).glob("idata*.nc"))
    if not files:
        raise BayesmetalError(f"{run}: no idata.nc or idata_<fit>.nc; not a run folder")
    idatas = {}
    for path in files:
        idata = load_idata(str(path))
        idatas[str(idata.attrs.get("fit", path.stem))] = idata
    return idatas


@dataclass(frozen=True)
class SavedRun:
    """What write_posterior put in a fit's idata attributes."""

    config: dict[str, Any]  # RunConfig.model_dump(mode="json", by_alias=True)
    priors: dict[str, dict[str, Any]]  # resolved priors
    provenance: dict[str, Any]  # data checksums, versions, overrides


def saved_run(idata: InferenceData) -> SavedRun:
    """Decode the attributes write_posterior saved; a missing one is an error naming it."""
    missing = [attr for attr in SAVED_ATTRS.values() if attr not in idata.attrs]
    if missing:
        raise ConfigError(
            f"the run's idata has no attribute(s) {', '.join(missing)}: "
            "not written by fit.py, or by an older version; refit it"
        )
    return SavedRun(**{key: json.loads(idata.attrs[attr]) for key, attr in SAVED_ATTRS.items()})
