"""Export what R's survey package needs to recompute the weighted Table 1 and Table 2 (the
whole NHANES design, the analysis sample as its domain, the described variables), run
scripts/r/svydescribe_reference.R on it, and keep its estimates as test fixtures:

    python scripts/svydescribe_reference.py   # writes tests/fixtures/svydescribe/*.csv

Each fixture names its config and group, so tests/test_weighted_describe.py rebuilds the same
tables from it. Needs R with the survey package (Debian: apt-get install r-cran-survey).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmetal.cli import resolve_data_dir
from bayesmetal.cohort import AnalysisTable, load_cohort
from bayesmetal.config import load_config
from bayesmetal.summaries.describe import PERCENTILES, level_label
from bayesmetal.summaries.weighted import is_categorical

ROOT = Path(__file__).resolve().parents[1]

# fixture name -> (shipped config, group of Table 1): two groups (t-test), five (Wald F), and
# a bernoulli outcome as the group
CASES = {
    "children_bmd_2017": ("glm_multi_lumbar.yaml", "age_group"),
    "children_bmd_2017_by_race": ("glm_multi_lumbar.yaml", "race"),
    "adults_op_2013": ("glm_multi_op_survey.yaml", "osteoporosis"),
}


def load_case(config_name: str) -> AnalysisTable:
    """The cohort of a shipped config, with its survey design."""
    config = load_config(ROOT / "configs" / config_name)
    return load_cohort(config.cohort, resolve_data_dir(config, None), config.cohort.survey)


def export_case(table: AnalysisTable, group_by: str, dest: Path) -> None:
    """One CSV row per person of the whole design (SEQN, weight, stratum, psu, in_domain) with,
    for the domain, the Table 1 variables (categorical ones as their printed labels), the
    group (`group__`), each exposure and its log (`log_<name>`); NA outside the domain."""
    frame = table.frame.set_index("SEQN")
    columns = {var: _printed(table, frame, var) for var in [*table.covariates, *table.outcomes]}
    columns["group__"] = columns[group_by]
    for name in table.exposure_names:
        columns[name] = frame[name]
        columns[f"log_{name}"] = np.log(frame[name].where(frame[name] > 0))
    domain = pd.DataFrame(columns).reset_index()
    whole = table.survey.frame.merge(domain, on="SEQN", how="left")
    whole["in_domain"] = whole["in_domain"].astype(int)
    whole.to_csv(dest, index=False)


def _printed(table: AnalysisTable, frame: pd.DataFrame, var: str) -> pd.Series:
    """A variable as R reads it: a categorical one as its printed labels ('yes', 'male')."""
    values = frame[var]
    if not is_categorical(table, var):
        return values
    labels = values.dropna().astype(object).map(lambda v: level_label(table, var, v))
    return labels.reindex(values.index)


def main() -> int:
    out = ROOT / "tests" / "fixtures" / "svydescribe"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for name, (config, group_by) in CASES.items():
            table = load_case(config)
            export_case(table, group_by, Path(work) / f"{name}.csv")
            variables = [v for v in [*table.covariates, *table.outcomes] if v != group_by]
            pd.DataFrame({"variable": variables}).to_csv(
                Path(work) / f"{name}_variables.csv", index=False
            )
        script = ROOT / "scripts" / "r" / "svydescribe_reference.R"
        percentiles = ",".join(str(p) for p in PERCENTILES)
        subprocess.run(["Rscript", str(script), work, str(out), percentiles, *CASES], check=True)
    for name, (config, group_by) in CASES.items():
        fixture = pd.read_csv(out / f"{name}.csv", keep_default_na=False, na_values=["NA"])
        fixture.insert(0, "group_by", group_by)
        fixture.insert(0, "config", config)
        fixture.to_csv(out / f"{name}.csv", index=False)
    print(f"wrote {', '.join(sorted(p.name for p in out.glob('*.csv')))} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
