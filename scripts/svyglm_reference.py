"""Export what R's survey::svyglm needs to refit our survey GLMs (the coded design matrix and
the whole design with its domain), run scripts/r/svyglm_reference.R on it, and keep its
coefficients and standard errors as test fixtures:

    python scripts/svyglm_reference.py        # writes tests/fixtures/svyglm/*.csv

Needs R with the survey package (Debian: apt-get install r-cran-survey).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bayesmetal.survey_reference import CASES, export_case

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    out = ROOT / "tests" / "fixtures" / "svyglm"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for name, config in CASES.items():
            export_case(ROOT / "configs" / config, Path(work) / f"{name}.csv")
        script = ROOT / "scripts" / "r" / "svyglm_reference.R"
        subprocess.run(["Rscript", str(script), work, str(out), *CASES], check=True)
    print(f"wrote {', '.join(sorted(p.name for p in out.glob('*.csv')))} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
