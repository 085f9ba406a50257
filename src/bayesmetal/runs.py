"""Run folders: written into a temporary sibling and renamed into place only when complete."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import pandas as pd
import yaml
from matplotlib.figure import Figure

from bayesmetal import report
from bayesmetal.errors import BayesmetalError, ConfigError

if TYPE_CHECKING:
    from bayesmetal.arviz_api import InferenceData
    from bayesmetal.workflow import Plan, Results

# what a run folder holds before any summary: all that `fit.py --summarise` needs
POSTERIOR_FILES = ("idata*.nc", "config.resolved.yaml", "flow.csv")
FAILURE_FILE = "summaries_failed.txt"
SAVED_ATTRS = {
    "config": "bayesmetal_config",
    "priors": "bayesmetal_priors",
    "provenance": "bayesmetal_provenance",
}


@contextmanager
def atomic_folder(dest: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes `dest` only if the block finishes.

    A failure or interruption removes the temporary folder and leaves `dest` untouched;
    an existing `dest` is replaced only when `overwrite` is true.
    """
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise BayesmetalError(
            f"output folder {dest} already exists; pass --overwrite to replace it"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.partial-*"):  # left by a killed process
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide results from co-workers
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        trash = dest.with_name(f".{dest.name}.old-{tmp.name}")
        dest.rename(trash)
        tmp.rename(dest)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(dest)


def save_figure(figure: Figure, path: Path) -> bytes:
    """Write a figure as PNG, close it, and return the bytes (for the report)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


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
    resolved = {**resolved_config, "priors_resolved": plan.priors, "provenance": provenance}
    (folder / "config.resolved.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    saved = {"config": resolved_config, "priors": plan.priors, "provenance": provenance}
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
    for name, table in results.tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
    pngs = {name: save_figure(fig, folder / f"{name}.png") for name, fig in results.figures.items()}
    backends = sorted({str(i.attrs.get("sampler_backend")) for i in results.idatas.values()})
    wall = sum(float(i.attrs.get("wall_time_s", 0)) for i in results.idatas.values())
    meta = {
        "config": plan.config.source,
        "model": f"{plan.config.model.name} ({len(results.idatas)} fit(s))",
        "outcome": f"{plan.design.outcome} ({plan.design.family})",
        "exposures": ", ".join(plan.design.exposures),
        "covariates": ", ".join(plan.design.covariate_columns) or "none",
        "n": str(plan.design.n),
        "sampler": f"{', '.join(backends)}; {plan.config.sampler.chains} chains x "
        f"{plan.config.sampler.draws} draws ({plan.config.sampler.tune} tune), "
        f"seed {plan.config.sampler.seed}, wall {wall:.1f} s",
        "priors": json.dumps(plan.priors),
    }
    tables = {"flow": pd.read_csv(folder / "flow.csv"), **results.tables}
    page = report.render(
        f"bayesmetal: {Path(plan.config.source.split(' ')[0]).stem}",
        meta,
        results.verdict,
        bool(results.diagnostics["ok"].all()),
        tables,
        results.diagnostics,
        pngs,
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


def copy_posterior(run: Path, folder: Path) -> None:
    """Copy the posterior files of run folder `run` into `folder` (for --summarise)."""
    for path in posterior_files(run):
        shutil.copy2(path, folder / path.name)


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
