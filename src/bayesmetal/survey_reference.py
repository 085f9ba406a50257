"""The cases checked against R's survey::svyglm, and their export for R: each run's coded
design matrix (exactly the columns the Bayesian GLM sees) joined to the whole survey design,
the analysis sample marked as the domain (scripts/svyglm_reference.py, scripts/r/)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmetal.config import load_config
from bayesmetal.design import Design
from bayesmetal.workflow import build_design, load_data

# fixture name -> shipped survey config (gaussian on children_bmd_2017, logistic on adults 2013)
CASES = {
    "children_lumbar": "glm_multi_lumbar_survey.yaml",
    "adults_op": "glm_multi_op_survey.yaml",
}


def r_name(term: str) -> str:
    """A design column as a syntactic R name: 'sex[female]' -> 'sex_female_'."""
    return re.sub(r"[^A-Za-z0-9_]", "_", term)


def coefficient_names(design: Design) -> list[str]:
    """The GLM's coefficients in the order of the exported columns: intercept, the exposure
    terms (beta), the coded covariates (gamma)."""
    return ["intercept", *design.exposures, *design.covariate_columns]


def export_case(config_path: Path, dest: Path) -> Design:
    """Write one CSV row per person of the whole design: SEQN, weight, stratum, psu,
    in_domain, and for the domain y and the coded columns (0 outside it, where R's subset()
    gives them no weight)."""
    config = load_config(config_path)
    table = load_data(config)
    design = build_design(config, table)
    columns = np.column_stack([design.multi_terms().values, design.X])
    names = [r_name(n) for n in coefficient_names(design)[1:]]
    analysis = pd.DataFrame(columns, columns=names)
    analysis.insert(0, "y", design.y)
    analysis.insert(0, "SEQN", design.ids)
    whole = table.survey.frame.merge(analysis, on="SEQN", how="left").fillna(0)
    whole["in_domain"] = whole["in_domain"].astype(int)
    whole.to_csv(dest, index=False)
    return design
