"""Rebuild src/bayesmetal/cdc_files.json, the catalogue of full CDC NHANES files.

    python scripts/build_cdc_catalog.py --source ../shared/data/nhanes

--source is a folder <cycle>/<NAME>.XPT of CDC public-use files exactly as published. The
shipped catalogue was built from ../shared/data/nhanes, whose SOURCES.md gives each file's
origin (public repositories that committed the CDC originals) and its SAS creation stamp.
For every file it records cycle, file name, SHA-256, size in bytes, rows (read by pyreadstat
and checked against the count the header and file length imply) and the SHA-256 of the
header, which identifies the release: the readers and the downloader use it to tell a
damaged copy of a catalogued file from another file of the same name.
"""

import argparse
import json
import sys
from pathlib import Path

import pyreadstat

from bayesmetal import xpt
from bayesmetal.catalog import get_cycle

CATALOGUE = Path(__file__).resolve().parent.parent / "src" / "bayesmetal" / xpt.CATALOGUE
ABOUT = (
    "SHA-256, size and rows of full CDC NHANES public-use files; built by "
    "scripts/build_cdc_catalog.py (see its docstring for the source of the files)"
)


def entry(path: Path) -> dict:
    """Catalogue entry of one file; stops if pyreadstat and the header disagree on rows."""
    found = xpt.catalogue_entry(path)
    _, meta = pyreadstat.read_xport(str(path), metadataonly=True)
    read = len(pyreadstat.read_xport(str(path), usecols=meta.column_names[:1])[0])
    if read != found["rows"]:
        raise SystemExit(
            f"{path}: pyreadstat reads {read} rows, the header implies {found['rows']}"
        )
    return {"cycle": path.parent.name, "file": path.name, **found}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="folder of full CDC NHANES files")
    parser.add_argument("--dest", default=str(CATALOGUE))
    args = parser.parse_args()
    files = {}
    for path in sorted(Path(args.source).glob("*/*.XPT")):
        get_cycle(path.parent.name)  # refuses folders that are not NHANES cycles
        files[f"{path.parent.name}/{path.name}"] = entry(path)
    Path(args.dest).write_text(json.dumps({"about": ABOUT, "files": files}, indent=1) + "\n")
    print(f"wrote {len(files)} files to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
