"""Rebuild the embedded NHANES extract in data/nhanes/ from full CDC files.

    python scripts/build_extract.py --source ../shared/data/nhanes

Keeps the columns the default cohort configs read (all rows, values unchanged) and writes
data/nhanes/MANIFEST.json with source and extract checksums.
"""

import argparse
import sys
from pathlib import Path

from bayesmetal.config import load_config
from bayesmetal.extract import build_extract

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_COHORTS = ["children_bmd_2017", "adults_op_2013"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="folder of full NHANES files")
    parser.add_argument("--dest", default=str(ROOT / "data" / "nhanes"))
    args = parser.parse_args()
    specs = [
        load_config(ROOT / "configs" / "cohorts" / f"{name}.yaml").cohort
        for name in DEFAULT_COHORTS
    ]
    manifest = build_extract(specs, Path(args.source), Path(args.dest))
    for name, entry in manifest["files"].items():
        print(f"{name}: {entry['rows']} rows x {len(entry['columns'])} columns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
