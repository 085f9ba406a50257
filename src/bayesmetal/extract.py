"""Build the embedded data extract: the columns default cohorts need, values unchanged.

The extract keeps every row and the real file layout (<cycle>/<NAME>.XPT, same variable
names and labels), so the reader and cohort code run on it unchanged and give the same
tables as the full CDC files. A manifest records source and extract checksums.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyreadstat

from bayesmetal import nhanes, xpt
from bayesmetal.catalog import get_cycle
from bayesmetal.cohort import SURVEY_DESIGN, required_variables
from bayesmetal.cohort_schema import CohortSpec
from bayesmetal.errors import DataError


def verify_sources(specs: list[CohortSpec], source_dir: Path) -> dict[tuple[str, str], str]:
    """(cycle, component) -> SHA-256 of each source file, every one verified complete first
    (nhanes.verify): pyreadstat reads a cut file silently, and the manifest would vouch for it."""
    manifest = xpt.load_manifest(source_dir)
    digests: dict[tuple[str, str], str] = {}
    for spec in specs:
        for label in spec.cycles:
            cycle = get_cycle(label)
            for comp in spec.components:
                if (label, comp) not in digests:
                    path = nhanes.locate(source_dir, cycle, comp)
                    verified = nhanes.verify(path, cycle, comp, source_dir, manifest)
                    digests[(label, comp)] = verified.sha256
    return digests


def columns_needed(specs: list[CohortSpec], source_dir: Path) -> dict[tuple[str, str], list[str]]:
    """(cycle, component) -> columns that some cohort reads from that file."""
    needed: dict[tuple[str, str], list[str]] = {}
    for spec in specs:
        optional = set(spec.weight.candidates) | set(SURVEY_DESIGN)
        wanted = set(required_variables(spec)) | optional
        for label in spec.cycles:
            cycle = get_cycle(label)
            for comp in spec.components:
                path = nhanes.locate(source_dir, cycle, comp)
                present = [c for c in nhanes.column_labels(path) if c in wanted]
                key = (label, comp)
                needed[key] = list(dict.fromkeys([nhanes.ID, *needed.get(key, []), *present]))
                wanted -= set(present) - optional
    return needed


def write_xpt(frame: pd.DataFrame, labels: dict[str, str], path: Path, name: str) -> None:
    """Write a SAS transport v5 file the way CDC ships them (dataset name = file stem)."""
    pyreadstat.write_xport(
        frame, str(path), column_labels=labels, table_name=name, file_format_version=5
    )


def build_extract(specs: list[CohortSpec], source_dir: Path, dest_dir: Path) -> dict:
    """Write the extract and its manifest; verify every source file before reading any, and
    every column survives the round trip."""
    digests = verify_sources(specs, source_dir)
    manifest: dict = {"files": {}}
    for (label, comp), columns in sorted(columns_needed(specs, source_dir).items()):
        cycle = get_cycle(label)
        source = nhanes.locate(source_dir, cycle, comp)
        frame, _ = pyreadstat.read_xport(str(source), usecols=columns)
        labels = {c: nhanes.column_labels(source)[c] for c in columns}
        target = Path(dest_dir) / label / cycle.file_name(comp)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        write_xpt(frame, labels, tmp, cycle.file_stem(comp))
        back, _ = pyreadstat.read_xport(str(tmp))
        if not back.equals(frame[back.columns]) or list(back.columns) != columns:
            tmp.unlink()
            raise DataError(f"round trip of {source} changed values; extract not written")
        tmp.replace(target)
        manifest["files"][f"{label}/{target.name}"] = {
            "source_sha256": digests[(label, comp)],
            "extract_sha256": nhanes.sha256(target),
            "rows": len(frame),
            "columns": columns,
        }
    (Path(dest_dir) / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
