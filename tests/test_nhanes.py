import shutil

import pyreadstat
import pytest

from bayesmetal import nhanes
from bayesmetal.catalog import get_cycle
from bayesmetal.errors import DataError


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
