"""Download public NHANES files from CDC: verified, atomic, skipping files already present."""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pyreadstat

from bayesmetal.catalog import get_cycle
from bayesmetal.errors import FetchError

CDC_BASE_URL = "https://wwwn.cdc.gov/Nchs/Data/Nhanes/Public"
XPT_MAGIC = b"HEADER RECORD*******LIBRARY HEADER RECORD"
RECORD = 80  # SAS transport files are written in 80-byte records


@dataclass(frozen=True)
class FetchResult:
    """What happened to one file: 'downloaded' or 'present' (already valid, skipped)."""

    path: Path
    status: str
    size: int


def file_url(base_url: str, cycle_label: str, component: str) -> str:
    """CDC address of a file: <base>/<first year>/DataFiles/<NAME>.xpt."""
    cycle = get_cycle(cycle_label)
    return f"{base_url.rstrip('/')}/{cycle.begin_year}/DataFiles/{cycle.file_stem(component)}.xpt"


def check_xpt(path: Path, origin: str) -> None:
    """Raise FetchError unless the file is a complete, readable SAS transport file."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(len(XPT_MAGIC))
    if head != XPT_MAGIC:
        raise FetchError(f"{origin} is not a SAS transport (.XPT) file (got {head[:40]!r})")
    if size % RECORD:
        raise FetchError(f"{origin} is truncated: {size} bytes is not a whole number of records")
    try:
        pyreadstat.read_xport(str(path))
    except Exception as exc:  # pyreadstat's own error classes
        raise FetchError(f"{origin} cannot be read as XPT: {exc}") from exc


def _download(url: str, target: Path, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            received = 0
            with open(target, "wb") as out:
                while block := response.read(1 << 16):
                    out.write(block)
                    received += len(block)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise FetchError(
            f"cannot reach {url} ({exc.reason}); are you offline? Download the file by hand "
            f"and put it in {target.parent}"
        ) from exc
    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
        raise FetchError(f"{url}: download interrupted ({exc})") from exc
    if expected is not None and int(expected) != received:
        raise FetchError(f"{url}: truncated download, {received} of {expected} bytes")
    return received


def fetch_file(url: str, dest: Path, timeout: float = 60.0) -> FetchResult:
    """Download `url` to `dest` unless a valid file is there; never leaves a partial file."""
    dest = Path(dest)
    if dest.is_file():
        try:
            check_xpt(dest, str(dest))
            return FetchResult(dest, "present", dest.stat().st_size)
        except FetchError:
            pass  # an invalid local copy is replaced below
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        size = _download(url, tmp, timeout)
        check_xpt(tmp, url)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return FetchResult(dest, "downloaded", size)


def fetch(
    cycles: list[str],
    components: list[str],
    dest: Path,
    base_url: str = CDC_BASE_URL,
    timeout: float = 60.0,
) -> list[FetchResult]:
    """Fetch every (cycle, component) file into <dest>/<cycle>/<NAME>.XPT."""
    results = []
    for label in cycles:
        cycle = get_cycle(label)
        for component in components:
            target = Path(dest) / cycle.label / cycle.file_name(component)
            results.append(fetch_file(file_url(base_url, label, component), target, timeout))
    return results
