"""SAS transport (XPORT) files: parse the header, count the observations, verify integrity.

pyreadstat reads a file that was cut short without a word (it stops at the last whole row),
so every file is checked here first. The header gives the length of one observation and where
the observations start; the file length then gives how many observations the file holds.
A cut that happens to fall between observations and records looks whole to that rule, so
files are also checked against the MANIFEST.json of the data folder (the embedded extract)
and against the shipped catalogue of CDC files (cdc_files.json: SHA-256, size, rows).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import BinaryIO

from bayesmetal.errors import DataError

RECORD = 80  # the file is a sequence of 80-byte records
BLANK = b" "
HEADER_PREFIX = b"HEADER RECORD*******"
HEADER_SUFFIX = b"HEADER RECORD!!!!!!!"
VERSIONS = {"LIBRARY": 5, "LIBV8": 8}
LABEL_HEADERS = {"LABELV8", "LABELV9"}  # version 8 only: long names and labels
MANIFEST = "MANIFEST.json"
CATALOGUE = "cdc_files.json"

CATALOGUE_VERIFIED = "verified against catalogue"
MANIFEST_VERIFIED = f"verified against {MANIFEST}"
OTHER_RELEASE = "structure checked only, not the catalogued CDC release"
STRUCTURE_ONLY = "structure checked only, not in catalogue"


@dataclass(frozen=True)
class Layout:
    """What the header says: format version, observation length and where data start."""

    version: int
    variables: int
    row_length: int
    data_start: int
    header_sha256: str  # of every byte before the first observation: identifies a release


@dataclass(frozen=True)
class Verified:
    """A file found whole: its checksum, number of observations and how it was checked."""

    sha256: str
    rows: int
    level: str


def sha256(path: Path) -> str:
    """Checksum of a file: verified against the catalogue and recorded with every result."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_name(record: bytes) -> str | None:
    """Name of a header record ('LIBRARY', 'OBS', ...), None for any other record."""
    if record[:20] != HEADER_PREFIX or record[28:48] != HEADER_SUFFIX:
        return None
    return record[20:28].decode("ascii", "replace").strip()


def _number(record: bytes, start: int, end: int, name: str) -> int:
    """A zero-padded decimal field of a header record."""
    field = record[start:end]
    if not field.isdigit():
        raise DataError(f"{name} has a malformed SAS transport header record: {record[:60]!r}")
    return int(field)


def _read_exactly(handle: BinaryIO, size: int, name: str) -> bytes:
    """`size` bytes, or an error saying the file ends inside its header."""
    block = handle.read(size)
    if len(block) < size:
        raise DataError(f"{name} is truncated: it ends inside its SAS transport header")
    return block


def _library_version(first: bytes, name: str) -> int:
    """Format version from the first record; anything else is not a transport file."""
    version = VERSIONS.get(_record_name(first) or "")
    if version is None:
        raise DataError(
            f"{name} is not a SAS transport (.XPT) file: it starts with {first[:40]!r} "
            "(an HTML error page or another format saved under an .XPT name?)"
        )
    return version


def _expect(record: bytes, names: set[str], name: str) -> None:
    if _record_name(record) not in names:
        wanted = " or ".join(sorted(names))
        raise DataError(f"{name}: expected the SAS transport {wanted} header, got {record[:48]!r}")


def _round_up(offset: int) -> int:
    return -(-offset // RECORD) * RECORD


def _data_start(handle: BinaryIO, offset: int, name: str) -> int:
    """Offset of the first observation: just after the OBS header record.

    In version 5 that record follows the variable descriptions; version 8 may put a section
    of long names and labels in between, which is skipped.
    """
    handle.seek(offset)
    record = _read_exactly(handle, RECORD, name)
    offset += RECORD
    if _record_name(record) in LABEL_HEADERS:
        while _record_name(record) != "OBSV8":
            record = _read_exactly(handle, RECORD, name)
            offset += RECORD
    _expect(record, {"OBS", "OBSV8"}, name)
    return offset


def read_layout(path: Path, name: str | None = None) -> Layout:
    """Parse the library, member and variable (NAMESTR) headers of a transport file."""
    name = name or str(path)
    with open(path, "rb") as handle:
        first = handle.read(RECORD)
        version = _library_version(first, name)
        records = [first] + [_read_exactly(handle, RECORD, name) for _ in range(7)]
        _expect(records[3], {"MEMBER", "MEMBV8"}, name)
        _expect(records[4], {"DSCRPTR", "DSCPTV8"}, name)
        _expect(records[7], {"NAMESTR", "NAMSTV8"}, name)
        namestr_length = _number(records[3], 74, 78, name)
        variables = _number(records[7], 54, 58, name)
        if namestr_length not in (136, 140):  # 136 on VAX/VMS, 140 everywhere else
            raise DataError(f"{name}: unknown variable description length {namestr_length}")
        namestrs = _read_exactly(handle, variables * namestr_length, name)
        widths = [
            struct.unpack_from(">h", namestrs, i * namestr_length + 4)[0] for i in range(variables)
        ]
        if any(width <= 0 for width in widths):
            raise DataError(f"{name} has a variable of length <= 0 in its header")
        start = _data_start(handle, _round_up(handle.tell()), name)
        handle.seek(0)
        header_sha256 = hashlib.sha256(handle.read(start)).hexdigest()
    return Layout(version, variables, sum(widths), start, header_sha256)


def count_observations(path: Path, layout: Layout, name: str | None = None) -> int:
    """Observations in the file, from its length; an error unless the file is complete.

    The data area is whole observations followed by fewer than 80 bytes of blank padding up
    to a multiple of 80 bytes. Trailing all-blank observations count as padding, as they do
    for pyreadstat (ReadStat), so both give the same number.
    """
    name = name or str(path)
    size = path.stat().st_size
    data = size - layout.data_start
    if layout.row_length == 0:
        raise DataError(f"{name} declares no variables")
    whole, rest = divmod(data, layout.row_length)
    if size % RECORD:
        raise DataError(
            f"{name} is truncated: {size:,} bytes is not a whole number of 80-byte records "
            f"(the header and file length imply at most {whole:,} observations)"
        )
    with open(path, "rb") as handle:
        handle.seek(size - min(data, RECORD + layout.row_length))
        tail = handle.read()
    blanks = len(tail) - len(tail.rstrip(BLANK))
    if blanks < rest:
        raise DataError(
            f"{name} is truncated: it ends {rest} bytes into observation {whole + 1:,} "
            f"({layout.row_length}-byte observations; {whole:,} whole ones before the cut)"
        )
    rows = whole - (blanks - rest) // layout.row_length
    padding = data - rows * layout.row_length
    if padding >= RECORD:
        raise DataError(
            f"{name} is damaged: {padding} blank bytes follow its last observation "
            f"(observation {rows:,}); a SAS transport file pads with fewer than 80"
        )
    return rows


def catalogue_entry(path: Path) -> dict:
    """What the catalogue records of a complete file: checksum, size, rows, header checksum."""
    layout = read_layout(path)
    return {
        "sha256": sha256(path),
        "size": path.stat().st_size,
        "rows": count_observations(path, layout),
        "header_sha256": layout.header_sha256,
    }


@cache
def catalogue() -> dict[str, dict]:
    """The shipped catalogue of full CDC files: "<cycle>/<NAME>.XPT" -> sha256, size, rows."""
    text = resources.files("bayesmetal").joinpath(CATALOGUE).read_text()
    return json.loads(text)["files"]


def load_manifest(folder: Path) -> dict[str, dict]:
    """Files listed in <folder>/MANIFEST.json (an embedded extract), or {} if there is none."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path} is not a valid manifest (expected {{'files': ...}}): {exc}"
        ) from exc


def _check_manifest(entry: dict, digest: str, rows: int, name: str) -> None:
    """The file must be the listed extract or its CDC source, with the listed rows."""
    if rows != entry["rows"]:
        problem = "truncated" if rows < entry["rows"] else "corrupt"
        raise DataError(
            f"{name} is {problem}: the header and file length imply {rows:,} observations "
            f"but {MANIFEST} lists {entry['rows']:,}"
        )
    if digest not in (entry["extract_sha256"], entry["source_sha256"]):
        raise DataError(
            f"{name} is corrupt: its SHA-256 {digest[:12]}... is neither the extract's "
            f"({entry['extract_sha256'][:12]}...) nor the CDC file's "
            f"({entry['source_sha256'][:12]}...) listed in {MANIFEST}"
        )


def _check_catalogue(entry: dict, digest: str, size: int, rows: int, name: str) -> None:
    """A file with the header of a catalogued CDC file must be that file, byte for byte."""
    if (digest, size, rows) == (entry["sha256"], entry["size"], entry["rows"]):
        return
    if size < entry["size"]:
        raise DataError(
            f"{name} is truncated: the header and file length imply {rows:,} observations but "
            f"the CDC file has {entry['rows']:,} ({size:,} of {entry['size']:,} bytes; SHA-256 "
            "differs from the catalogue)"
        )
    raise DataError(
        f"{name} is corrupt: its header is the CDC file's but its SHA-256 differs from the "
        f"catalogue ({rows:,} observations in {size:,} bytes; the CDC file has "
        f"{entry['rows']:,} in {entry['size']:,})"
    )


def verify(
    path: Path,
    key: str,
    digest: str,
    manifest: dict[str, dict] | None = None,
    name: str | None = None,
) -> Verified:
    """Check a file is complete; `key` is "<cycle>/<NAME>.XPT", `digest` its SHA-256.

    Always: header and file length (whole observations, blank padding) and at least one
    observation. Where the key is in `manifest`: the listed checksums and rows. Where the
    header is that of a catalogued CDC file: that file's checksum, size and rows. A file
    whose header differs (a user's own, synthetic or re-released file) is checked by
    structure only.
    """
    name = name or str(path)
    manifest = manifest or {}
    layout = read_layout(path, name)
    rows = count_observations(path, layout, name)
    if rows == 0:
        raise DataError(f"{name} holds no observations (0 rows after its header)")
    level = STRUCTURE_ONLY
    if key in manifest:
        _check_manifest(manifest[key], digest, rows, name)
        level = MANIFEST_VERIFIED
    entry = catalogue().get(key)
    if entry and entry["header_sha256"] == layout.header_sha256:
        _check_catalogue(entry, digest, path.stat().st_size, rows, name)
        level = CATALOGUE_VERIFIED
    elif entry and level == STRUCTURE_ONLY:
        level = OTHER_RELEASE
    return Verified(digest, rows, level)
