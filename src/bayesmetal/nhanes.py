"""Read NHANES .XPT files, join components on SEQN and stack cycles into one raw table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

from bayesmetal import xpt
from bayesmetal.catalog import Cycle, check_poolable, pooled_weight_factor
from bayesmetal.errors import DataError
from bayesmetal.xpt import sha256  # recorded with every result, so a run can be traced

ID = "SEQN"
BASE_COMPONENT = "DEMO"


@dataclass(frozen=True)
class RawTable:
    """Joined NHANES data: one row per person, the variable labels and the files read."""

    frame: pd.DataFrame
    labels: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)  # "cycle/FILE.XPT" -> sha256


def locate(data_dir: Path, cycle: Cycle, component: str) -> Path:
    """Path of a component's file for a cycle: <data_dir>/<cycle>/<NAME>.XPT (any case)."""
    folder = Path(data_dir) / cycle.label
    name = cycle.file_name(component)
    for candidate in (name, name[:-4] + ".xpt"):
        if (folder / candidate).is_file():
            return folder / candidate
    raise DataError(
        f"NHANES file {name} (component {component}, cycle {cycle.label}) not found in "
        f"{folder}; run scripts/fetch_nhanes.py --cycles {cycle.label} "
        f"--components {component} --dest {data_dir} to download it"
    )


def verify(
    path: Path, cycle: Cycle, component: str, data_dir: Path, manifest: dict[str, dict]
) -> xpt.Verified:
    """Check a file is complete before trusting it (pyreadstat reads cut files silently).

    Header and length always; the data folder's manifest and the CDC catalogue where they
    know the file. The checksum computed here is the one recorded for provenance.
    """
    key = f"{cycle.label}/{cycle.file_name(component)}"
    try:
        return xpt.verify(path, key, sha256(path), manifest)
    except DataError as exc:
        raise DataError(
            f"{exc}; download it again with scripts/fetch_nhanes.py --cycles {cycle.label} "
            f"--components {component} --dest {data_dir}"
        ) from exc


def column_labels(path: Path) -> dict[str, str]:
    """Variable names and labels of an XPT file, without reading its rows."""
    try:
        _, meta = pyreadstat.read_xport(str(path), metadataonly=True)
    except Exception as exc:  # pyreadstat raises its own error types for corrupt files
        raise DataError(f"cannot read {path} as a SAS transport file: {exc}") from exc
    return {name: (label or "") for name, label in meta.column_names_to_labels.items()}


def check_ids(frame: pd.DataFrame, path: Path) -> None:
    """SEQN must be a whole number on every row and unique: it is the join key."""
    if not pd.api.types.is_numeric_dtype(frame[ID]):
        raise DataError(f"{path}: {ID} is stored as text ({frame[ID].dtype}); expected numbers")
    ids = frame[ID].to_numpy(dtype=float)
    missing = int(np.isnan(ids).sum())
    if missing:
        raise DataError(f"{path} has no {ID} on {missing:,} of {len(frame):,} rows")
    if (ids != np.trunc(ids)).any():
        raise DataError(f"{path} has {ID} values that are not whole numbers")
    if frame[ID].duplicated().any():
        raise DataError(f"{path} has duplicated {ID} values; expected one row per person")


def read_component(
    path: Path, columns: list[str], rows: int
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read the given columns (plus SEQN) of one XPT file verified to hold `rows` rows."""
    labels = column_labels(path)
    missing = [c for c in [ID, *columns] if c not in labels]
    if missing:
        raise DataError(f"column(s) {', '.join(missing)} not found in {path}")
    wanted = list(dict.fromkeys([ID, *columns]))
    frame, _ = pyreadstat.read_xport(str(path), usecols=wanted)
    if len(frame) != rows:
        raise DataError(
            f"{path}: pyreadstat read {len(frame):,} rows but the header and file length "
            f"imply {rows:,} observations; the file is damaged"
        )
    check_ids(frame, path)
    frame[ID] = frame[ID].astype("int64")
    return frame, {c: labels[c] for c in wanted}


def read_cycle(
    data_dir: Path,
    cycle: Cycle,
    components: list[str],
    variables: list[str],
    optional: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    """Join the variables of one cycle on SEQN, starting from DEMO (everyone sampled).

    Each variable is taken from the first listed component whose file has it, so the
    configuration never needs to say which file a variable lives in. `optional` variables
    (candidate weights, which differ by cycle) are read where a file has them.
    """
    if BASE_COMPONENT not in components:
        raise DataError(f"components must include {BASE_COMPONENT} (the sampled persons)")
    paths = {comp: locate(data_dir, cycle, comp) for comp in components}
    manifest = xpt.load_manifest(data_dir)
    checked = {c: verify(p, cycle, c, data_dir, manifest) for c, p in paths.items()}
    available = {comp: column_labels(path) for comp, path in paths.items()}
    chosen: dict[str, list[str]] = {comp: [] for comp in components}
    for var in dict.fromkeys([*variables, *optional]):
        if var == ID:
            continue
        home = next((c for c in components if var in available[c]), None)
        if home is None and var in optional and var not in variables:
            continue
        if home is None:
            files = ", ".join(p.name for p in paths.values())
            raise DataError(
                f"variable {var} not found in any file of cycle {cycle.label} ({files})"
            )
        chosen[home].append(var)
    frame, labels = read_component(
        paths[BASE_COMPONENT], chosen[BASE_COMPONENT], checked[BASE_COMPONENT].rows
    )
    for comp in components:
        if comp == BASE_COMPONENT or not chosen[comp]:
            continue
        part, part_labels = read_component(paths[comp], chosen[comp], checked[comp].rows)
        unknown = set(part[ID]) - set(frame[ID])
        if unknown:
            raise DataError(
                f"{paths[comp]} has {len(unknown)} SEQN values absent from "
                f"{paths[BASE_COMPONENT].name}: files from different cycles?"
            )
        frame = frame.merge(part, on=ID, how="left", validate="one_to_one")
        labels.update(part_labels)
    sources = {f"{cycle.label}/{paths[c].name}": checked[c].sha256 for c in components}
    return frame, labels, sources


def read_cycles(
    data_dir: Path,
    cycle_labels: list[str],
    components: list[str],
    variables: list[str],
    optional: tuple[str, ...] = (),
) -> RawTable:
    """Stack cycles into one table with `cycle` and `pool_factor` (share of survey years)."""
    cycles = check_poolable(cycle_labels)
    frames, labels, sources = [], {}, {}
    for cycle in cycles:
        frame, cycle_labels_, cycle_sources = read_cycle(
            data_dir, cycle, components, variables, optional
        )
        frame.insert(1, "cycle", cycle.label)
        frame.insert(2, "pool_factor", pooled_weight_factor(cycle, cycles))
        frames.append(frame)
        for var, label in cycle_labels_.items():
            labels.setdefault(var, label)
        sources.update(cycle_sources)
    return RawTable(pd.concat(frames, ignore_index=True), labels, sources)
