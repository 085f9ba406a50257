"""Convergence checks of every fit against the targets: reported and flagged, never hidden."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmetal.arviz_api import (
    InferenceData,
    constant_parameters,
    convergence_table,
    divergences,
)
from bayesmetal.config import DiagnosticTargets


def check(
    idata: InferenceData, var_names: list[str], targets: DiagnosticTargets, fit_label: str
) -> pd.DataFrame:
    """One row per scalar parameter: R-hat, bulk/tail ESS, divergences and a pass flag."""
    table = convergence_table(idata, var_names)
    constant = constant_parameters(idata, table.loc[table["rhat"].isna(), "parameter"].tolist())
    n_div = divergences(idata)
    table.insert(0, "fit", fit_label)
    table["divergences"] = n_div
    problems = []
    for _, row in table.iterrows():
        issues = []
        if row["parameter"] in constant:
            problems.append("")  # same value in every draw (e.g. a PIP of exactly 0 or 1)
            continue
        if not row["rhat"] <= targets.max_rhat:
            issues.append(f"R-hat {row['rhat']:.3f} > {targets.max_rhat}")
        if not min(row["ess_bulk"], row["ess_tail"]) >= targets.min_ess:
            issues.append(f"ESS {min(row['ess_bulk'], row['ess_tail']):.0f} < {targets.min_ess:g}")
        if n_div > targets.max_divergences:
            issues.append(f"{n_div} divergences")
        problems.append("; ".join(issues))
    table["problems"] = problems
    table["ok"] = table["problems"] == ""
    table["note"] = np.where(table["parameter"].isin(constant), "constant in every draw", "")
    return table


def verdict(table: pd.DataFrame) -> str:
    """One line for the terminal and the report."""
    bad = table[~table["ok"]]
    if bad.empty:
        return (
            f"converged: max R-hat {table['rhat'].max():.3f}, min bulk ESS "
            f"{table['ess_bulk'].min():.0f}, min tail ESS {table['ess_tail'].min():.0f}, "
            f"{int(table.groupby('fit')['divergences'].first().sum())} divergences"
        )
    return f"NOT CONVERGED for {len(bad)} parameter(s): " + "; ".join(
        f"{r.fit}/{r.parameter}: {r.problems}" for r in bad.head(5).itertuples()
    )
