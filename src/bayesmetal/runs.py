"""Atomic output folders: write into a temporary sibling, rename into place when complete."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bayesmetal.errors import BayesmetalError


@contextmanager
def atomic_folder(dest: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes `dest` only if the block finishes.

    A failure or interruption removes the temporary folder and leaves `dest` untouched;
    an existing `dest` is replaced only when `overwrite` is true.
    """
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise BayesmetalError(
            f"output folder {dest} already exists; pass --overwrite to replace it"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        trash = dest.with_name(f".{dest.name}.old-{tmp.name}")
        dest.rename(trash)
        tmp.rename(dest)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(dest)
