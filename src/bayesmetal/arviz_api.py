"""Every ArviZ call lives here (ArviZ 0.23 today; an upgrade to 1.x touches this file only).

R-hat, bulk/tail ESS, divergences, netcdf I/O and rank plots.
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
    """Read an InferenceData saved with `idata.to_netcdf`."""
    return az.from_netcdf(path)


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
            labels = inside.rstrip("]").split(", ")
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
