"""Every ArviZ call lives here (ArviZ 0.23 today; an upgrade to 1.x touches this file only).

R-hat, bulk/tail ESS, divergences, netcdf I/O, data groups and rank plots.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

with warnings.catch_warnings():  # ArviZ 0.23 announces its 1.x refactor on import
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

InferenceData = az.InferenceData


def load_idata(path: str) -> InferenceData:
    """Read an InferenceData saved with `idata.to_netcdf`, wholly into memory (no open file
    handle: a run folder can be replaced while its idata is in use)."""
    with az.rc_context({"data.load": "eager"}):
        return az.from_netcdf(path)


def attach_data(
    idata: InferenceData,
    group: str,
    arrays: dict[str, tuple[tuple[str, ...], np.ndarray]],
    coords: dict[str, list],
) -> None:
    """Add `arrays` ({name: (dims, values)}) to `group` ('observed_data', 'constant_data'),
    replacing variables of the same name, so a saved idata holds the data its summaries read."""
    used = {dim for dims, _ in arrays.values() for dim in dims}
    new = xr.Dataset(arrays, coords={k: v for k, v in coords.items() if k in used})
    if group in idata.groups():
        new = getattr(idata, group).drop_vars(list(arrays), errors="ignore").merge(new)
    idata.extend(az.InferenceData(**{group: new}), join="right")


def stored_data(idata: InferenceData, group: str) -> dict[str, np.ndarray]:
    """The arrays of `group` by name; empty when the idata has no such group."""
    if group not in idata.groups():
        return {}
    dataset = getattr(idata, group)
    return {name: dataset[name].to_numpy() for name in dataset.data_vars}


def from_chains(
    draws: dict[str, np.ndarray],
    coords: dict[str, list],
    dims: dict[str, list[str]],
    stats: dict[str, np.ndarray] | None = None,
) -> InferenceData:
    """InferenceData from arrays shaped (chain, draw, ...) produced by a custom sampler."""
    return az.from_dict(posterior=draws, sample_stats=stats or {}, coords=coords, dims=dims)


def concat_draws(first: InferenceData, second: InferenceData) -> InferenceData:
    """Append the draws of `second` after those of `first`, chain by chain."""
    groups = {}
    for group in ("posterior", "sample_stats"):
        a, b = getattr(first, group), getattr(second, group)
        b = b.assign_coords(draw=b["draw"] + a.sizes["draw"])
        groups[group] = xr.concat([a, b], dim="draw")
    return az.InferenceData(**groups)


def convergence_table(idata: InferenceData, var_names: list[str]) -> pd.DataFrame:
    """R-hat (rank-normalised), bulk and tail ESS for every scalar element of the variables."""
    table = az.summary(idata, var_names=var_names, kind="diagnostics")
    table = table.rename(columns={"r_hat": "rhat"})[["rhat", "ess_bulk", "ess_tail"]]
    return table.rename_axis("parameter").reset_index()


def constant_parameters(idata: InferenceData, names: list[str]) -> set[str]:
    """Those of `names` (as named by `convergence_table`) whose value is the same in every
    draw of every chain, e.g. a PIP of exactly 0 or 1: R-hat is undefined for them, yet
    nothing is wrong. Chains stuck at different values are not constant and stay flagged."""
    constant = set()
    for name in names:
        var, _, inside = name.partition("[")
        data = idata.posterior[var]
        if inside:
            labels = inside.removesuffix("]").split(", ")  # a label may hold "]"
            dims = [d for d in data.dims if d not in ("chain", "draw")]
            data = data.sel({d: _coord(data, d, lab) for d, lab in zip(dims, labels, strict=True)})
        values = data.to_numpy()
        if np.all(values == values.flat[0]):
            constant.add(name)
    return constant


def _coord(data, dim: str, label: str):
    """The coordinate value of `dim` whose string form is `label`."""
    for value in data.coords[dim].to_numpy():
        if str(value) == label:
            return value
    raise KeyError(f"{label!r} not in {dim}")


def divergences(idata: InferenceData) -> int:
    """Number of divergent transitions after warm-up, over all chains."""
    stats = getattr(idata, "sample_stats", None)
    return int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0


def rank_plot(idata: InferenceData, var_names: list[str]) -> Figure:
    """Trace and rank plots side by side (ArviZ plot_trace with rank bars)."""
    axes = az.plot_trace(idata, var_names=var_names, kind="rank_bars", compact=True)
    figure = np.asarray(axes).ravel()[0].figure
    figure.tight_layout()
    return figure


def mcse_mean(samples: np.ndarray) -> float:
    """Monte Carlo standard error of the mean of draws shaped (chain, draw), from the
    rank-normalised effective sample size (a constant array has MCSE 0)."""
    samples = np.asarray(samples, dtype=float)
    if np.all(samples == samples.flat[0]):
        return 0.0
    return float(np.asarray(az.mcse(samples)).ravel()[0])
