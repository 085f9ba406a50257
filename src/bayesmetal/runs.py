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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import yaml
from matplotlib.figure import Figure

from bayesmetal import report
from bayesmetal.errors import BayesmetalError

if TYPE_CHECKING:
    from bayesmetal.workflow import Results


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


def write_run(
    folder: Path,
    results: Results,
    resolved_config: dict[str, Any],
    overrides: list[str],
) -> None:
    """idata, resolved config, diagnostics, tables, figures and report.html into `folder`."""
    plan = results.plan
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
    attrs = {
        "bayesmetal_config": json.dumps(resolved_config),
        "bayesmetal_priors": json.dumps(plan.priors),
        "bayesmetal_provenance": json.dumps(provenance),
    }
    single = len(results.idatas) == 1
    for label, idata in results.idatas.items():
        idata.attrs.update(attrs | {"fit": label})
        idata.to_netcdf(str(folder / ("idata.nc" if single else f"idata_{label}.nc")))
    plan.table.flow.to_csv(folder / "flow.csv", index=False)
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
    tables = {"flow": plan.table.flow, **results.tables}
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
