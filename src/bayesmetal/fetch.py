"""Download public NHANES files from CDC: verified, atomic, re-checking files already present."""

from __future__ import annotations

import errno
import http.client
import math
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyreadstat

from bayesmetal import xpt
from bayesmetal.catalog import get_cycle
from bayesmetal.errors import ConfigError, DataError, FetchError

CDC_BASE_URL = "https://wwwn.cdc.gov/Nchs/Data/Nhanes/Public"
COMPONENT = re.compile(r"[A-Z0-9_]+")  # dataset stems: DEMO, PBCD, COTNAL, P_DEMO
REPLACED = "replaced (was truncated/corrupt)"


@dataclass(frozen=True)
class FetchResult:
    """One file: 'downloaded', 'present' (valid, skipped) or REPLACED, and how it was verified."""

    path: Path
    status: str
    size: int
    verification: str


def check_base_url(base_url: str) -> None:
    """Refuse anything but an http(s) address with a host (urllib would raise ValueError)."""
    try:
        parts = urllib.parse.urlsplit(base_url)
    except ValueError as exc:
        raise FetchError(f"--base-url {base_url!r} is not a valid address: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(
            f"--base-url {base_url!r} is not an http(s) address with a host, such as {CDC_BASE_URL}"
        )


def check_component(component: str) -> None:
    """A component must be a dataset stem: it becomes part of a file name under --dest."""
    if not COMPONENT.fullmatch(component):
        raise ConfigError(
            f"--components {component!r} is not an NHANES dataset name (upper-case letters, "
            "digits and underscores, e.g. DEMO or PBCD)"
        )


def file_url(base_url: str, cycle_label: str, component: str) -> str:
    """CDC address of a file: <base>/<first year>/DataFiles/<NAME>.xpt."""
    cycle = get_cycle(cycle_label)
    return f"{base_url.rstrip('/')}/{cycle.begin_year}/DataFiles/{cycle.file_stem(component)}.xpt"


def target_path(dest: Path, cycle_label: str, component: str) -> Path:
    """<dest>/<cycle>/<NAME>.XPT, refused unless it lies inside dest."""
    check_component(component)
    cycle = get_cycle(cycle_label)
    target = Path(dest) / cycle.label / cycle.file_name(component)
    if not target.resolve().is_relative_to(Path(dest).resolve()):
        raise ConfigError(f"{cycle_label}/{component} would be written outside --dest {dest}")
    return target


def check_xpt(path: Path, key: str, origin: str, manifest: dict[str, dict]) -> str:
    """Verify a file is complete and readable; return how it was verified (FetchError if not).

    `key` is "<cycle>/<NAME>.XPT": the catalogue (and the dest's manifest) are looked up by it.
    """
    try:
        verified = xpt.verify(path, key, xpt.sha256(path), manifest, origin)
        read = len(pyreadstat.read_xport(str(path))[0])
    except DataError as exc:
        raise FetchError(str(exc)) from exc
    except (OSError, MemoryError):
        raise  # cannot read it: says nothing about whether the file is whole
    except Exception as exc:  # pyreadstat's own error classes
        raise FetchError(f"{origin} cannot be read as XPT: {exc}") from exc
    if read != verified.rows:
        raise FetchError(
            f"{origin}: pyreadstat read {read:,} rows but the header and file length imply "
            f"{verified.rows:,}"
        )
    return verified.level


def _os_error(exc: OSError, dest: Path, url: str) -> FetchError:
    """A failure to write dest (the disk-full case spelled out) or another socket error."""
    if exc.errno == errno.ENOSPC:
        return FetchError(f"the disk is full: cannot write {dest} (downloading {url})")
    return FetchError(f"{url}: download to {dest} failed ({exc})")


def _download(url: str, tmp: Path, dest: Path, timeout: float) -> int:
    """Stream url into tmp; every failure becomes a FetchError that names url and dest."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            received = 0
            with open(tmp, "wb") as out:
                while block := response.read(1 << 16):
                    out.write(block)
                    received += len(block)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise FetchError(
            f"cannot reach {url} ({exc.reason}); are you offline? Download the file by hand "
            f"and put it in {dest.parent}"
        ) from exc
    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
        raise FetchError(f"{url}: download interrupted ({exc})") from exc
    except (ValueError, http.client.InvalidURL) as exc:  # e.g. unknown url type, bad port
        raise FetchError(f"{url} is not a valid address: {exc}") from exc
    except OSError as exc:  # writing the file, or a socket error not caught above
        raise _os_error(exc, dest, url) from exc
    if expected is not None and int(expected) != received:
        raise FetchError(f"{url}: truncated download, {received} of {expected} bytes")
    return received


def _present(dest: Path, key: str, manifest: dict[str, dict]) -> FetchResult | None:
    """The result for a valid file already at dest; a file failing the checks is deleted.

    A file that cannot be read (permissions, I/O error) is left alone: FetchError.
    """
    if not dest.is_file():
        return None
    try:
        level = check_xpt(dest, key, str(dest), manifest)
    except FetchError:
        dest.unlink()  # never keep a file that cannot be verified as complete
        return None
    except OSError as exc:
        raise FetchError(f"cannot read {dest} to check it ({exc}); it was left as it is") from exc
    return FetchResult(dest, "present", dest.stat().st_size, level)


def fetch_file(
    url: str, dest: Path, timeout: float = 60.0, manifest: dict[str, dict] | None = None
) -> FetchResult:
    """Download `url` to dest (<folder>/<cycle>/<NAME>.XPT) unless a valid file is there.

    A file already there is verified again and replaced if it fails; a download is verified
    before it is renamed into place, so a partial or unverified file is never left behind.
    A damaged file is deleted before the download: if that fails, the error says so.
    """
    dest = Path(dest)
    key = f"{dest.parent.name}/{dest.name}"
    manifest = manifest or {}
    existed = dest.is_file()
    present = _present(dest, key, manifest)
    if present:
        return present
    try:
        size, level = _download_verified(url, dest, key, manifest, timeout)
    except FetchError as exc:
        if existed:
            raise FetchError(
                f"{exc}; the damaged copy that was at {dest} failed its checks and was removed"
            ) from exc
        raise
    return FetchResult(dest, REPLACED if existed else "downloaded", size, level)


def _download_verified(
    url: str, dest: Path, key: str, manifest: dict[str, dict], timeout: float
) -> tuple[int, str]:
    """Download `url` beside dest, verify it and rename it into place: (size, verification)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise _os_error(exc, dest, url) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        size = _download(url, tmp, dest, timeout)
        try:
            level = check_xpt(tmp, key, url, manifest)
        except FetchError as exc:
            raise FetchError(f"{exc}; the download was not kept") from exc
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return size, level


def fetch(
    cycles: list[str],
    components: list[str],
    dest: Path,
    base_url: str = CDC_BASE_URL,
    timeout: float = 60.0,
    done: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Fetch every (cycle, component) file into <dest>/<cycle>/<NAME>.XPT.

    All arguments are checked before anything is downloaded; `done` is told about each file as
    it is finished, so a failure further on does not hide what was already fetched.
    """
    if not (timeout > 0 and math.isfinite(timeout)):
        raise FetchError(f"--timeout must be a positive number of seconds, not {timeout}")
    check_base_url(base_url)
    targets = [(c, comp, target_path(dest, c, comp)) for c in cycles for comp in components]
    manifest = xpt.load_manifest(dest)
    results = []
    for cycle, component, target in targets:
        results.append(fetch_file(file_url(base_url, cycle, component), target, timeout, manifest))
        if done is not None:
            done(results[-1])
    return results
