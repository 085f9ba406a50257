import json
import shutil

import pyreadstat
import pytest

from bayesmetal import nhanes, xpt
from bayesmetal.catalog import get_cycle
from bayesmetal.errors import DataError

from .test_xpt import cut_copy


def test_real_files_read_with_labels(shared_nhanes):
    raw = nhanes.read_cycles(shared_nhanes, ["2017-2018"], ["DEMO", "PBCD"], ["RIDAGEYR", "LBXBPB"])
    assert len(raw.frame) == 9254  # DEMO_J row count in the NHANES documentation
    assert raw.labels["LBXBPB"] == "Blood lead (ug/dL)"
    pbcd, _ = pyreadstat.read_xport(str(shared_nhanes / "2017-2018" / "PBCD_J.XPT"))
    assert len(pbcd) == 8366
    assert raw.frame["LBXBPB"].notna().sum() == pbcd["LBXBPB"].notna().sum()
    assert set(raw.sources) == {"2017-2018/DEMO_J.XPT", "2017-2018/PBCD_J.XPT"}


def test_real_subsample_weights_are_where_the_labels_say(shared_nhanes):
    h = nhanes.column_labels(shared_nhanes / "2013-2014" / "PBCD_H.XPT")
    g = nhanes.column_labels(shared_nhanes / "2011-2012" / "CUSEZN_G.XPT")
    j = nhanes.column_labels(shared_nhanes / "2017-2018" / "PBCD_J.XPT")
    assert h["WTSH2YR"] == "Blood metal weights"
    assert g["WTSA2YR"] == "Subsample A weights"
    assert not any(name.startswith("WTS") for name in j)  # 2017-18 metals: full MEC sample


def test_join_and_stack_with_pooled_weight_factor(synthetic_nhanes):
    raw = nhanes.read_cycles(
        synthetic_nhanes,
        ["2011-2012", "2013-2014", "2015-2016"],
        ["DEMO", "PBCD", "CUSEZN"],
        ["RIDAGEYR", "LBXBPB", "LBXSZN"],
        optional=("WTSA2YR", "WTSH2YR"),
    )
    assert len(raw.frame) == 1500
    assert raw.frame.groupby("cycle").size().tolist() == [500, 500, 500]
    assert raw.frame["pool_factor"].unique().tolist() == pytest.approx([1 / 3])
    assert raw.frame["SEQN"].is_unique
    # left join from DEMO: persons outside the serum subsample keep a row with a missing value
    demo, _ = pyreadstat.read_xport(str(synthetic_nhanes / "2013-2014" / "CUSEZN_H.XPT"))
    h = raw.frame[raw.frame.cycle == "2013-2014"]
    assert h["LBXSZN"].notna().sum() == len(demo)
    # PBCD_G has no subsample weight, PBCD_H does: optional weights read where present
    assert raw.frame.loc[raw.frame.cycle == "2011-2012", "WTSH2YR"].isna().all()
    assert raw.frame.loc[raw.frame.cycle == "2013-2014", "WTSH2YR"].notna().all()


def test_missing_file_names_the_file_and_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match=r"DXX_H\.XPT.*fetch_nhanes"):
        nhanes.locate(tmp_path, get_cycle("2013-2014"), "DXX")


def test_missing_column_names_column_and_file(synthetic_nhanes):
    with pytest.raises(DataError, match=r"LBXNOPE.*PBCD_J\.XPT"):
        nhanes.read_cycles(synthetic_nhanes, ["2017-2018"], ["DEMO", "PBCD"], ["LBXNOPE"])


def test_file_from_another_cycle_is_detected(synthetic_nhanes, tmp_path):
    for name in ("DEMO_H.XPT", "PBCD_H.XPT"):
        (tmp_path / "2013-2014").mkdir(exist_ok=True)
        shutil.copy(synthetic_nhanes / "2013-2014" / name, tmp_path / "2013-2014" / name)
    shutil.copy(
        synthetic_nhanes / "2015-2016" / "PBCD_I.XPT", tmp_path / "2013-2014" / "PBCD_H.XPT"
    )
    with pytest.raises(DataError, match="SEQN values absent"):
        nhanes.read_cycles(tmp_path, ["2013-2014"], ["DEMO", "PBCD"], ["LBXBPB"])


def test_corrupt_file_is_a_clear_error(tmp_path):
    (tmp_path / "2013-2014").mkdir()
    (tmp_path / "2013-2014" / "DEMO_H.XPT").write_text("<html>not found</html>")
    with pytest.raises(DataError, match="DEMO_H.XPT"):
        nhanes.read_cycles(tmp_path, ["2013-2014"], ["DEMO"], ["RIDAGEYR"])


def _copy_cycle(synthetic_nhanes, dest, names=("DEMO_H.XPT", "PBCD_H.XPT")):
    """Copies of synthetic 2013-2014 files in dest/2013-2014/, to be damaged by a test."""
    (dest / "2013-2014").mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(synthetic_nhanes / "2013-2014" / name, dest / "2013-2014" / name)
    return dest / "2013-2014"


def _read_h(data_dir):
    return nhanes.read_cycles(data_dir, ["2013-2014"], ["DEMO", "PBCD"], ["LBXBPB"])


@pytest.mark.parametrize("how", ["half", "record", "observation"])
def test_cut_file_is_an_error_not_a_smaller_cohort(synthetic_nhanes, tmp_path, how):
    folder = _copy_cycle(synthetic_nhanes, tmp_path)
    cut_copy(synthetic_nhanes / "2013-2014" / "PBCD_H.XPT", folder / "PBCD_H.XPT", how)
    with pytest.raises(
        DataError, match=r"PBCD_H\.XPT is truncated: .*fetch_nhanes\.py --cycles 2013-2014 "
    ):
        _read_h(tmp_path)


def test_cut_between_records_is_caught_by_the_manifest(synthetic_nhanes, tmp_path):
    folder = _copy_cycle(synthetic_nhanes, tmp_path)
    files = {}
    for path in folder.iterdir():
        rows = len(pyreadstat.read_xport(path)[0])
        digest = nhanes.sha256(path)
        files[f"2013-2014/{path.name}"] = {
            "source_sha256": "0" * 64,
            "extract_sha256": digest,
            "rows": rows,
        }
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"files": files}))
    assert len(_read_h(tmp_path).frame) == 500
    cut_copy(synthetic_nhanes / "2013-2014" / "PBCD_H.XPT", folder / "PBCD_H.XPT", "whole")
    with pytest.raises(
        DataError, match=r"PBCD_H\.XPT is truncated: .* imply 250 observations but MANIFEST"
    ):
        _read_h(tmp_path)


def test_cut_between_records_is_caught_by_the_catalogue(synthetic_nhanes, tmp_path, monkeypatch):
    full = synthetic_nhanes / "2013-2014" / "PBCD_H.XPT"
    entry = xpt.catalogue_entry(full)
    monkeypatch.setattr(xpt, "catalogue", lambda: {"2013-2014/PBCD_H.XPT": entry})
    folder = _copy_cycle(synthetic_nhanes, tmp_path)
    cut_copy(full, folder / "PBCD_H.XPT", "whole")
    with pytest.raises(DataError, match=r"imply 250 observations but the CDC file has 500"):
        _read_h(tmp_path)


def test_real_file_cut_at_a_record_boundary_is_caught(shared_nhanes, tmp_path):
    folder = tmp_path / "2017-2018"
    folder.mkdir()
    shutil.copy(shared_nhanes / "2017-2018" / "DEMO_J.XPT", folder)
    full = shared_nhanes / "2017-2018" / "PBCD_J.XPT"
    layout = xpt.read_layout(full)
    cut = layout.data_start + 4170 * layout.row_length  # a record and observation boundary
    (folder / "PBCD_J.XPT").write_bytes(full.read_bytes()[:cut])
    assert len(pyreadstat.read_xport(folder / "PBCD_J.XPT")[0]) == 4170  # silently short
    with pytest.raises(
        DataError,
        match=r"PBCD_J\.XPT is truncated: the header and file length imply 4,170 observations "
        r"but the CDC file has 8,366 \(.*SHA-256 differs from the catalogue\); download it again",
    ):
        nhanes.read_cycles(tmp_path, ["2017-2018"], ["DEMO", "PBCD"], ["LBXBPB"])


@pytest.mark.parametrize(
    ("seqn", "message"),
    [
        (float("nan"), r"PBCD_H\.XPT has no SEQN on 2 of 500 rows"),
        (1.5, r"PBCD_H\.XPT has SEQN values that are not whole numbers"),
        ("x", r"PBCD_H\.XPT: SEQN is stored as text"),
    ],
)
def test_bad_seqn_names_file_and_rows(synthetic_nhanes, tmp_path, seqn, message):
    folder = _copy_cycle(synthetic_nhanes, tmp_path)
    frame, _ = pyreadstat.read_xport(folder / "PBCD_H.XPT")
    if isinstance(seqn, str):
        frame["SEQN"] = frame["SEQN"].astype(int).astype(str)
    frame.loc[[3, 7], "SEQN"] = seqn
    pyreadstat.write_xport(frame, str(folder / "PBCD_H.XPT"), table_name="PBCD_H")
    with pytest.raises(DataError, match=message):
        _read_h(tmp_path)


def test_empty_file_is_an_error(synthetic_nhanes, tmp_path):
    folder = _copy_cycle(synthetic_nhanes, tmp_path)
    frame, _ = pyreadstat.read_xport(folder / "PBCD_H.XPT")
    pyreadstat.write_xport(frame.iloc[:0], str(folder / "PBCD_H.XPT"), table_name="PBCD_H")
    with pytest.raises(DataError, match=r"PBCD_H\.XPT holds no observations"):
        _read_h(tmp_path)


def test_html_page_saved_as_xpt_is_an_error(synthetic_nhanes, tmp_path):
    folder = _copy_cycle(synthetic_nhanes, tmp_path)
    (folder / "PBCD_H.XPT").write_text("<!DOCTYPE html><html>Page Not Found</html>")
    with pytest.raises(DataError, match=r"PBCD_H\.XPT is not a SAS transport \(\.XPT\) file"):
        _read_h(tmp_path)


def test_rows_read_must_match_the_file_length(synthetic_nhanes, tmp_path, monkeypatch):
    _copy_cycle(synthetic_nhanes, tmp_path)
    read = pyreadstat.read_xport

    def one_row_short(*args, **kwargs):
        frame, meta = read(*args, **kwargs)
        return frame.iloc[:-1], meta

    monkeypatch.setattr(pyreadstat, "read_xport", one_row_short)
    with pytest.raises(DataError, match=r"read 499 rows but the header and file length imply 500"):
        _read_h(tmp_path)


def test_sources_are_the_verified_checksums(synthetic_nhanes):
    raw = _read_h(synthetic_nhanes)
    for name, digest in raw.sources.items():
        assert digest == nhanes.sha256(synthetic_nhanes / name)
