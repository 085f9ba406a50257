"""What one analysis holds between its stages: the `Plan` (everything decided before sampling)
and the `Results` (posteriors, diagnostics, tables and figures), which run folders store."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure

from bayesmetal import diagnostics
from bayesmetal.arviz_api import InferenceData
from bayesmetal.cohort import AnalysisTable
from bayesmetal.design import Design
from bayesmetal.models.contract import Fit
from bayesmetal.priors import Priors
from bayesmetal.run_schema import RunConfig


@dataclass
class Plan:
    """Everything decided before sampling."""

    config: RunConfig
    table: AnalysisTable | None  # None when rebuilt from a run folder (plan_from_run)
    design: Design
    priors: Priors
    fits: list[Fit]


@dataclass
class Results:
    """Posterior draws, convergence checks, tidy tables and figures of a run."""

    plan: Plan
    idatas: dict[str, InferenceData]
    diagnostics: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    headline: tuple[str, ...] = ()  # the model's Summary.headline: names of tables (figures)
    captions: dict[str, str] = field(default_factory=dict)  # a table's note in the report
    notes: dict[str, str] = field(default_factory=dict)  # header items of report and terminal
    files: dict[str, pd.DataFrame] = field(default_factory=dict)  # CSV only, not in the report

    @property
    def verdict(self) -> str:
        draws = max(idata.posterior.sizes["draw"] for idata in self.idatas.values())
        return diagnostics.verdict(
            self.diagnostics, draws, self.plan.config.summaries.targets.min_ess
        )
