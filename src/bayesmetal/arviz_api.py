"""Every ArviZ call lives here (ArviZ 0.23 today; an upgrade to 1.x touches this file only).

R-hat, bulk/tail ESS, divergences, netcdf I/O, data groups, rank plots and PSIS-LOO.
"""

from __future__ import annotations

import itertools
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


def with_group(
    idata: InferenceData, group: str, dataset: xr.Dataset, keep_as: str
) -> InferenceData:
    """A copy of `idata` whose `group` is `dataset`, the old one kept as group `keep_as`
    (a non-standard group name: ArviZ's warning about it is expected and silenced)."""
    groups = {name: getattr(idata, name) for name in idata.groups()}
    groups[keep_as], groups[group] = groups[group], dataset
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not .*default.*group", category=UserWarning)
        new = az.InferenceData(**groups)
    new.attrs.update(idata.attrs)
    return new


def restored(idata: InferenceData, group: str, kept_as: str) -> InferenceData:
    """The inverse of `with_group`: a copy of `idata` whose `group` is the group `kept_as`,
    which is dropped."""
    groups = {name: getattr(idata, name) for name in idata.groups() if name != kept_as}
    groups[group] = getattr(idata, kept_as)
    new = az.InferenceData(**groups)
    new.attrs.update(idata.attrs)
    return new


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
    """R-hat (rank-normalised), bulk and tail ESS for every scalar element of the variables,
    named and rounded as `az.summary(kind="diagnostics")` does (`r[Pb]`; R-hat to 2
    decimals, ESS to whole draws).

    ArviZ is not asked about an element with one value in every draw (a BKMR r_m or delta
    that stays 0): its R-hat is 0/0, which ArviZ computed with a RuntimeWarning each time.
    It gets what ArviZ returned, R-hat NaN and ESS = all draws (`constant_parameters` and
    the diagnostics judge it); fewer than 4 draws per chain give NaN, and one chain has no
    R-hat (NaN), as in `az.summary`."""
    rows = []
    for var in var_names:
        data = idata.posterior[var]
        inner = [d for d in data.dims if d not in ("chain", "draw")]
        values = data.transpose("chain", "draw", *inner).to_numpy().astype(float)
        flat = values.reshape(*values.shape[:2], -1)
        labels = itertools.product(*(data.coords[d].to_numpy() for d in inner))
        for k, label in enumerate(labels):
            name = f"{var}[{', '.join(str(v) for v in label)}]" if inner else var
            rows.append((name, *_diagnostics(flat[:, :, k])))
    return pd.DataFrame(rows, columns=["parameter", "rhat", "ess_bulk", "ess_tail"])


def _diagnostics(draws: np.ndarray) -> tuple[float, float, float]:
    """(R-hat, bulk ESS, tail ESS) of one scalar's draws shaped (chain, draw)."""
    chains, n = draws.shape
    if n < 4 or not np.all(np.isfinite(draws)):
        return np.nan, np.nan, np.nan
    if np.all(draws == draws.flat[0]):
        return np.nan, float(draws.size), float(draws.size)
    rhat = round(float(az.rhat(draws)), 2) if chains > 1 else np.nan
    bulk = round(float(az.ess(draws, method="bulk")))
    tail = round(float(az.ess(draws, method="tail")))
    return rhat, float(bulk), float(tail)


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


def rank_plot(
    idata: InferenceData, var_names: list[str], spike: float = 0.9, max_rows: int = 24
) -> Figure:
    """Trace and rank bars side by side, one row per scalar parameter (each element of a
    vector parameter is a row of its own, `r[Pb]`), chains in ArviZ's colours.

    A parameter at one value in at least `spike` of its draws (r_m = 0 while exposure m is
    out of h, a rarely flipped indicator) has ranks that are nearly all ties: its rank bars
    are one bar, which says nothing about mixing (the diagnostics table judges it). Such
    parameters, and those beyond `max_rows`, are listed under the figure instead of drawn.
    """
    import itertools
    import textwrap

    import matplotlib.pyplot as plt
    from scipy.stats import rankdata

    rows, skipped = [], []
    for var in var_names:
        data = idata.posterior[var]
        dims = [d for d in data.dims if d not in ("chain", "draw")]
        values = data.transpose("chain", "draw", *dims).to_numpy()
        values = values.reshape(values.shape[0], values.shape[1], -1)
        coords = [data.coords[d].to_numpy() for d in dims]
        for e, labels in enumerate(itertools.product(*coords)):
            label = f"{var}[{', '.join(str(v) for v in labels)}]" if dims else var
            x = values[:, :, e].astype(float)
            distinct, counts = np.unique(x, return_counts=True)
            share = counts.max() / x.size
            if share >= spike:
                mode = distinct[counts.argmax()]
                skipped.append(f"{label} = {mode:.3g} in {100 * share:.4g}% of draws")
            elif len(rows) >= max_rows:
                skipped.append(f"{label} (beyond {max_rows} rows)")
            else:
                rows.append((label, x))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    note = (
        "\n".join(
            textwrap.wrap(
                "Not drawn (at one value in most draws, so their ranks are ties; or beyond the "
                "rows shown): " + "; ".join(skipped),
                150,
            )
        )
        if skipped
        else ""
    )
    note_height = 0.18 * (note.count("\n") + 1) + 0.2 if note else 0.0
    figure = plt.figure(figsize=(10, 1.2 * max(len(rows), 0.5) + 0.4 + note_height))
    if rows:
        axes = figure.subplots(len(rows), 2, squeeze=False, width_ratios=(3, 2))
        for (label, x), (trace, ranks) in zip(rows, axes, strict=True):
            chains, draws = x.shape
            rank = rankdata(x.ravel()).reshape(x.shape)
            bins = np.linspace(0.5, x.size + 0.5, min(20, draws // 10 or 1) + 1)
            expected = draws / (len(bins) - 1)
            for c in range(chains):
                colour = colours[c % len(colours)]
                trace.plot(x[c], color=colour, linewidth=0.4, alpha=0.7, rasterized=True)
                counts, _ = np.histogram(rank[c], bins)
                height = np.minimum(0.45 * counts / expected, 0.95)
                ranks.bar(
                    bins[:-1],
                    height,
                    width=np.diff(bins),
                    bottom=c,
                    align="edge",
                    color=colour,
                    alpha=0.6,
                    linewidth=0,
                )
                ranks.hlines(c + 0.45, bins[0], bins[-1], color="black", lw=0.5, ls="--")
            trace.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
            trace.tick_params(labelsize=7)
            trace.set_xlim(0, max(draws - 1, 1))  # one draw: no zero-width axis
            ranks.set_yticks(np.arange(chains) + 0.45, [str(c) for c in range(chains)])
            ranks.tick_params(labelsize=7)
            ranks.set_xlim(bins[0], bins[-1])
            ranks.set_ylim(0, chains)
        axes[0, 0].set_title("trace (draws of each chain)", fontsize=9)
        axes[0, 1].set_title(
            "rank bars per chain (flat = well mixed; dashed = uniform)", fontsize=9
        )
        axes[-1, 0].set_xlabel("draw", fontsize=8)
        axes[-1, 1].set_xlabel("rank over all chains", fontsize=8)
    if note:
        figure.text(0.01, 0.01, note, fontsize=7, va="bottom", ha="left")
    bottom = (note_height / figure.get_figheight()) if note else 0.0
    figure.tight_layout(rect=(0, bottom, 1, 1))
    return figure


def mcse_mean(samples: np.ndarray) -> float:
    """Monte Carlo standard error of the mean of draws shaped (chain, draw), from the
    rank-normalised effective sample size (a constant array has MCSE 0)."""
    samples = np.asarray(samples, dtype=float)
    if np.all(samples == samples.flat[0]):
        return 0.0
    return float(np.asarray(az.mcse(samples)).ravel()[0])


def loo_pointwise(
    posterior: xr.Dataset, log_likelihood: xr.DataArray
) -> tuple[np.ndarray, np.ndarray]:
    """PSIS-LOO from the posterior draws and their (chain, draw, obs) pointwise
    log-likelihood: each observation's elpd_loo and its Pareto k."""
    idata = az.InferenceData(posterior=posterior, log_likelihood=xr.Dataset({"y": log_likelihood}))
    with warnings.catch_warnings():  # high Pareto k is reported in the table, not warned
        warnings.simplefilter("ignore", UserWarning)
        result = az.loo(idata, pointwise=True)
    return np.asarray(result.loo_i), np.asarray(result.pareto_k)
