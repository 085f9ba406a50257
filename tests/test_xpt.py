"""SAS transport checks: header parsing, observation count from file length, checksums."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from bayesmetal import xpt
from bayesmetal.errors import DataError

from .conftest import EMBEDDED_NHANES


def people(n: int, columns: int = 3) -> pd.DataFrame:
    """n persons with SEQN and numeric columns: observations of 8 bytes a column."""
    rng = np.random.default_rng(n)
    data = {"SEQN": np.arange(1.0, n + 1)}
    data.update({f"X{i}": rng.normal(size=n) for i in range(1, columns)})
    return pd.DataFrame(data)


def write(path: Path, frame: pd.DataFrame, version: int = 5, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.stem.upper()
    pyreadstat.write_xport(frame, str(path), table_name=name, file_format_version=version, **kwargs)
    return path


def cut_at(path: Path, how: str) -> int:
    """Offset to cut a file at, about half-way.

    'half': half the size; 'record': an 80-byte boundary inside an observation; 'observation':
    inside an observation; 'whole': a boundary of both a record and an observation, where the
    cut file still looks complete.
    """
    layout = xpt.read_layout(path)
    width, rows = layout.row_length, xpt.count_observations(path, layout)
    if how == "half":
        return path.stat().st_size // 2 | 1
    if how == "observation":
        return layout.data_start + width * (rows // 2) + width // 2
    if how == "whole":
        step = math.lcm(xpt.RECORD, width)
        return layout.data_start + step * (rows * width // 2 // step)
    assert xpt.RECORD % width, "every record boundary is an observation boundary"
    records = rows * width // 2 // xpt.RECORD
    while (records * xpt.RECORD) % width == 0:
        records += 1
    return layout.data_start + records * xpt.RECORD


def cut_copy(source: Path, target: Path, how: str) -> Path:
    """Copy of source cut as `cut_at` says."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes()[: cut_at(source, how)])
    return target


def verify(path: Path, **kwargs) -> xpt.Verified:
    return xpt.verify(path, "2013-2014/DEMO_H.XPT", xpt.sha256(path), **kwargs)


@pytest.mark.parametrize(("rows", "columns"), [(1, 1), (7, 3), (100, 2), (101, 2), (999, 11)])
def test_count_from_header_and_length_equals_pyreadstat(tmp_path, rows, columns):
    path = write(tmp_path / "demo_h.xpt", people(rows, columns))
    layout = xpt.read_layout(path)
    assert layout.version == 5
    assert (layout.variables, layout.row_length) == (columns, 8 * columns)
    assert xpt.count_observations(path, layout) == rows == len(pyreadstat.read_xport(path)[0])
    assert verify(path).level == xpt.OTHER_RELEASE  # named like a CDC file, but not CDC's
    assert xpt.verify(path, "mine/DEMO_H.XPT", "").level == xpt.STRUCTURE_ONLY


def test_version_8_with_long_names_and_labels(tmp_path):
    frame = people(50).rename(columns={"X1": "A_LONG_VARIABLE_NAME"})
    frame["TEXT"] = "ab"
    path = write(tmp_path / "demo_h.xpt", frame, version=8, column_labels=["id", "x" * 60, "", ""])
    layout = xpt.read_layout(path)
    assert (layout.version, layout.row_length) == (8, 3 * 8 + 2)
    assert xpt.count_observations(path, layout) == 50


def test_trailing_blank_observations_count_as_padding_like_pyreadstat(tmp_path):
    path = write(tmp_path / "demo_h.xpt", pd.DataFrame({"C": ["a", "b", "", ""]}))
    assert xpt.count_observations(path, xpt.read_layout(path)) == 2
    assert len(pyreadstat.read_xport(path)[0]) == 2


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("half", r"truncated: .* not a whole number of 80-byte records"),
        ("record", r"truncated: it ends \d+ bytes into observation 5\d\d"),
        ("observation", r"truncated: .*(records|into observation)"),
    ],
)
def test_cut_files_are_errors(tmp_path, how, message):
    source = write(tmp_path / "full" / "demo_h.xpt", people(1000))
    cut = cut_copy(source, tmp_path / "cut" / "DEMO_H.XPT", how)
    assert 0 < len(pyreadstat.read_xport(cut)[0]) < 1000  # what pyreadstat makes of it
    with pytest.raises(DataError, match=rf"DEMO_H\.XPT is {message}"):
        verify(cut)


def test_cut_between_records_and_observations_looks_whole_to_the_structure(tmp_path):
    source = write(tmp_path / "full" / "demo_h.xpt", people(1000))
    cut = cut_copy(source, tmp_path / "cut" / "DEMO_H.XPT", "whole")
    assert verify(cut).rows == len(pyreadstat.read_xport(cut)[0]) == 500


def test_manifest_catches_a_cut_between_records(tmp_path):
    source = write(tmp_path / "full" / "demo_h.xpt", people(1000))
    cut = cut_copy(source, tmp_path / "cut" / "DEMO_H.XPT", "whole")
    digest = xpt.sha256(source)
    listed = {"extract_sha256": digest, "source_sha256": "0" * 64, "rows": 1000}
    manifest = {"2013-2014/DEMO_H.XPT": listed}
    assert verify(source, manifest=manifest).level == xpt.MANIFEST_VERIFIED
    with pytest.raises(DataError, match=r"truncated: .* imply 500 observations but MANIFEST"):
        verify(cut, manifest=manifest)
    other = dict(listed, extract_sha256="1" * 64)
    with pytest.raises(DataError, match=r"corrupt: its SHA-256 .* neither the extract"):
        verify(source, manifest={"2013-2014/DEMO_H.XPT": other})


def test_catalogue_catches_a_cut_between_records(tmp_path, monkeypatch):
    source = write(tmp_path / "full" / "demo_h.xpt", people(1000))
    cut = cut_copy(source, tmp_path / "cut" / "DEMO_H.XPT", "whole")
    monkeypatch.setattr(
        xpt, "catalogue", lambda: {"2013-2014/DEMO_H.XPT": xpt.catalogue_entry(source)}
    )
    assert verify(source).level == xpt.CATALOGUE_VERIFIED
    with pytest.raises(
        DataError, match=r"truncated: .* imply 500 observations but the CDC file has 1,000"
    ):
        verify(cut)
    damaged = bytearray(source.read_bytes())
    damaged[-100] ^= 0x01  # one bit in the last observation
    cut.write_bytes(damaged)
    with pytest.raises(DataError, match=r"corrupt: its header is the CDC file's but its SHA-256"):
        verify(cut)
    other = write(tmp_path / "other" / "demo_h.xpt", people(20, 2))  # same name, another file
    assert verify(other).level == xpt.OTHER_RELEASE


def test_blank_padding_of_a_record_or_more_is_an_error(tmp_path):
    path = write(tmp_path / "demo_h.xpt", people(10))
    path.write_bytes(path.read_bytes() + b" " * 80)
    with pytest.raises(DataError, match=r"damaged: \d+ blank bytes follow its last observation"):
        verify(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html><body>Page not found</body></html>", r"not a SAS transport \(\.XPT\) file"),
        (b"", r"not a SAS transport"),
        ("header", r"truncated: it ends inside its SAS transport header"),
    ],
)
def test_not_transport_files_are_errors(tmp_path, content, message):
    path = tmp_path / "DEMO_H.XPT"
    if content == "header":
        content = write(tmp_path / "full.xpt", people(5)).read_bytes()[:500]
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"DEMO_H\.XPT .*{message}"):
        verify(path)


def test_empty_file_is_an_error(tmp_path):
    path = write(tmp_path / "demo_h.xpt", people(3).iloc[:0])
    with pytest.raises(DataError, match=r"demo_h\.xpt holds no observations"):
        verify(path)


def test_embedded_extract_is_verified_against_its_manifest():
    manifest = xpt.load_manifest(EMBEDDED_NHANES)
    for key in manifest:
        path = EMBEDDED_NHANES / key
        assert xpt.verify(path, key, xpt.sha256(path), manifest).level == xpt.MANIFEST_VERIFIED


def test_catalogue_agrees_with_the_manifest_sources():
    catalogue = xpt.catalogue()
    assert len(catalogue) >= 40
    for key, entry in catalogue.items():
        assert key == f"{entry['cycle']}/{entry['file']}"
        assert entry["size"] % xpt.RECORD == 0 and entry["rows"] > 0
    for key, listed in xpt.load_manifest(EMBEDDED_NHANES).items():
        assert catalogue[key]["sha256"] == listed["source_sha256"], key
        assert catalogue[key]["rows"] == listed["rows"], key


def test_shared_cdc_files_are_verified_against_the_catalogue(shared_nhanes):
    for key, entry in xpt.catalogue().items():
        path = shared_nhanes / key
        found = xpt.catalogue_entry(path)
        assert found == {k: entry[k] for k in found}, key
        assert xpt.verify(path, key, found["sha256"]).level == xpt.CATALOGUE_VERIFIED


def test_bad_manifest_is_an_error(tmp_path):
    (tmp_path / xpt.MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match=r"MANIFEST\.json is not a valid manifest"):
        xpt.load_manifest(tmp_path)
    assert xpt.load_manifest(tmp_path / "elsewhere") == {}
