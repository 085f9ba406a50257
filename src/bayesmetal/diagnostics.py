"""Convergence checks of every fit against the targets: reported and flagged, never hidden."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bayesmetal.arviz_api import (
    InferenceData,
    constant_parameters,
    convergence_table,
    divergences,
)
from bayesmetal.bkmr.inclusion import DECISIVE
from bayesmetal.bkmr.sampler import IN_ACCEPTED, IN_REJECTED, OUT_ACCEPTED, OUT_REJECTED
from bayesmetal.engines import EXTENDERS
from bayesmetal.run_schema import DiagnosticTargets

MIN_DRAWS = 4  # per chain: ArviZ's R-hat and ESS are undefined below this


def check(
    idata: InferenceData, var_names: list[str], targets: DiagnosticTargets, fit_label: str
) -> pd.DataFrame:
    """One row per scalar parameter: R-hat, bulk/tail ESS, divergences and a pass flag; for
    BKMR indicators also their in/out proposals and acceptances after warm-up. `sampler` is
    what drew the fit (the idata's `sampler_backend`: an engine's name, or PyMC's NUTS
    backend), so that `verdict` knows whether `--extend` can continue it."""
    table = convergence_table(idata, var_names)
    constant = constant_parameters(idata, table.loc[table["rhat"].isna(), "parameter"].tolist())
    conditional = json.loads(idata.attrs.get("bkmr_conditional_pip", "{}"))
    n_div = divergences(idata)
    draws = idata.posterior.sizes["draw"]
    table.insert(0, "fit", fit_label)
    table["sampler"] = str(idata.attrs.get("sampler_backend", ""))
    table["divergences"] = n_div
    problems, notes = [], []
    for _, row in table.iterrows():
        name = row["parameter"]
        if draws < MIN_DRAWS:  # before the constant test: one draw is always "constant"
            problems.append(f"{draws} draws per chain: R-hat and ESS need at least {MIN_DRAWS}")
            notes.append("")
            continue
        if name in constant:
            problem, note = _constant_verdict(idata, name, conditional)
            problems.append(problem)
            notes.append(note)
            continue
        issues = []
        if not row["rhat"] <= targets.max_rhat:
            issues.append(f"R-hat {row['rhat']:.3f} > {targets.max_rhat}")
        if not min(row["ess_bulk"], row["ess_tail"]) >= targets.min_ess:
            issues.append(f"ESS {min(row['ess_bulk'], row['ess_tail']):.0f} < {targets.min_ess:g}")
        if n_div > targets.max_divergences:
            issues.append(f"{n_div} divergences")
        problems.append("; ".join(issues))
        notes.append("")
    table["problems"] = problems
    table["ok"] = table["problems"] == ""
    table["note"] = notes
    return table.merge(flip_counts(idata), on="parameter", how="left")


def _constant_verdict(idata: InferenceData, name: str, conditional: dict) -> tuple[str, str]:
    """(problem, note) for a parameter with one value in every draw. An inclusion indicator
    that never flipped is decisive only if its Rao-Blackwellised PIP agrees (below 1% for 0,
    above 99% for 1); otherwise, or when that check is missing, it is flagged."""
    var, _, inside = name.partition("[")
    if var == "r":  # BKMR's r_m is 0 while its exposure is out: judged on its delta's row
        return "", "constant in every draw (follows its inclusion indicator)"
    if var != "delta":
        return "constant in every draw: the chains did not move", ""
    exposure = inside.removesuffix("]")
    value = int(idata.posterior["delta"].sel(exposure=exposure).to_numpy().flat[0])
    if exposure not in conditional:
        return "never flipped after warm-up in any chain, and no check of its evidence", ""
    cp = conditional[exposure]
    if (value == 0 and cp < DECISIVE) or (value == 1 and cp > 1 - DECISIVE):
        return "", f"decisive: never flipped; conditional inclusion probability {cp:.2g}"
    return (
        f"never flipped after warm-up, yet its conditional inclusion probability is {cp:.2f} "
        f"(the chains say {value}): the selection move is stuck; run longer or report it",
        "",
    )


def flip_counts(idata: InferenceData) -> pd.DataFrame:
    """Per exposure, from sample_stats 'flip': proposals to switch it in / out after warm-up
    and how many were accepted (empty when the sampler does not record them)."""
    stats = getattr(idata, "sample_stats", None)
    if stats is None or "flip" not in stats:
        return pd.DataFrame({"parameter": pd.Series(dtype=str)})
    flips = stats["flip"]
    counts = {
        "in_proposed": (IN_REJECTED, IN_ACCEPTED),
        "in_accepted": (IN_ACCEPTED,),
        "out_proposed": (OUT_REJECTED, OUT_ACCEPTED),
        "out_accepted": (OUT_ACCEPTED,),
    }
    exposures = [str(e) for e in flips.coords["exposure"].to_numpy()]
    values = flips.to_numpy().reshape(-1, len(exposures))
    table = {k: np.isin(values, codes).sum(axis=0) for k, codes in counts.items()}
    return pd.DataFrame({"parameter": [f"delta[{e}]" for e in exposures], **table})


def extendable(table: pd.DataFrame) -> bool | None:
    """Whether `--extend` can continue every fit of the table (each was drawn by an engine
    with an extender, `engines.EXTENDERS`); None when the table does not say (no `sampler`
    column, as in diagnostics tables written before it had one)."""
    if "sampler" not in table.columns:
        return None
    return bool(len(table)) and bool(table["sampler"].isin(list(EXTENDERS)).all())


def verdict(table: pd.DataFrame, draws: int | None = None, min_ess: float = 400) -> str:
    """One line for the terminal and the report; when an ESS falls short and `draws` (per
    chain) is given, it says how many draws would reach the target (ESS grows with draws):
    continuing the run with `--extend` where its engine can (`extendable`), otherwise
    raising draws (and tune) in the config and fitting again."""
    bad = table[~table["ok"]]
    if bad.empty:
        return (
            f"converged: max R-hat {table['rhat'].max():.3f}, min bulk ESS "
            f"{table['ess_bulk'].min():.0f}, min tail ESS {table['ess_tail'].min():.0f}, "
            f"{int(table.groupby('fit')['divergences'].first().sum())} divergences"
        )
    line = f"NOT CONVERGED for {len(bad)} parameter(s): " + "; ".join(
        f"{r.fit}/{r.parameter}: {r.problems}" for r in bad.head(5).itertuples()
    )
    short = bad[bad["problems"].str.contains("ESS")]
    lowest = float(short[["ess_bulk", "ess_tail"]].min(axis=1).min()) if len(short) else np.nan
    if draws and np.isfinite(lowest):
        needed = int(np.ceil(draws * 1.2 * min_ess / max(lowest, 1.0) / 100) * 100)
        line += f". To reach ESS {min_ess:g}, raise sampler.draws to about {needed}"
        can_extend = extendable(bad)
        if can_extend:
            line += f" (or continue this run: --extend RUN --set sampler.draws={needed - draws})"
        elif can_extend is None:  # a table that does not name its sampler
            line += f" (or continue a BKMR run: --extend RUN --set sampler.draws={needed - draws})"
        else:
            line += (
                " in the config (and sampler.tune alike if warm-up was short) and fit again "
                "(this engine cannot continue a saved run)"
            )
    return line
