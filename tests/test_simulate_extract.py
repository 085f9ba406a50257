"""Synthetic NHANES carries a known truth; the embedded extract matches its manifest."""

import json
import shutil

import numpy as np
import pyreadstat
import pytest

from bayesmetal import nhanes
from bayesmetal.config import load_config
from bayesmetal.errors import DataError
from bayesmetal.extract import build_extract
from bayesmetal.simulate import DEFAULT_TRUTH, METALS

from .conftest import CONFIGS, EMBEDDED_NHANES
from .test_xpt import cut_copy


def test_synthetic_files_have_real_names_labels_and_lod_codes(synthetic_nhanes):
    frame, meta = pyreadstat.read_xport(str(synthetic_nhanes / "2013-2014" / "PBCD_H.XPT"))
    assert meta.table_name == "PBCD_H"
    assert meta.column_names_to_labels["LBXBPB"] == "Blood lead (ug/dL)"
    below = frame["LBDBCDLC"] == 1
    lod = METALS["Cd"][5]
    assert below.any() and np.allclose(frame.loc[below, "LBXBCD"], round(lod / np.sqrt(2), 3))
    assert (frame.loc[frame["LBXBPB"].isna(), "WTSH2YR"] == 0).all()  # outside the subsample


def test_synthetic_truth_is_recoverable_by_least_squares(tmp_path):
    from bayesmetal.simulate import write_synthetic_nhanes

    truth = write_synthetic_nhanes(
        tmp_path, ["2017-2018"], n=4000, seed=3, components=("DEMO", "PBCD", "DXX")
    )
    raw = nhanes.read_cycles(
        tmp_path,
        ["2017-2018"],
        ["DEMO", "PBCD", "DXX"],
        ["RIDAGEYR", "RIAGENDR", "DXDTOBMD"] + [m[0] for m in METALS.values()],
    )
    df = raw.frame.dropna()
    columns = [np.ones(len(df))]
    for name, (var, *_rest) in METALS.items():
        columns.append((np.log(df[var]) - truth.log_mean[name]) / truth.log_sd[name])
    age = df["RIDAGEYR"]
    columns += [np.clip(age - 8, 0, 12), np.clip(age - 50, 0, None), df["RIAGENDR"] == 2]
    coef, *_ = np.linalg.lstsq(np.column_stack(columns).astype(float), df["DXDTOBMD"], rcond=None)
    for i, name in enumerate(METALS, start=1):
        # LOD imputation flattens the lower tail, so allow a little attenuation
        assert coef[i] == pytest.approx(DEFAULT_TRUTH.coefficients[name], abs=0.01)


def test_embedded_extract_matches_its_manifest():
    manifest = json.loads((EMBEDDED_NHANES / "MANIFEST.json").read_text())
    assert manifest["files"], "manifest lists no files"
    total = 0
    for name, entry in manifest["files"].items():
        path = EMBEDDED_NHANES / name
        assert nhanes.sha256(path) == entry["extract_sha256"], name
        total += path.stat().st_size
    assert total < 10 * 2**20


def test_embedded_extract_values_equal_the_cdc_files(shared_nhanes):
    manifest = json.loads((EMBEDDED_NHANES / "MANIFEST.json").read_text())
    for name, entry in manifest["files"].items():
        source = shared_nhanes / name
        assert nhanes.sha256(source) == entry["source_sha256"], name
        full, _ = pyreadstat.read_xport(str(source), usecols=entry["columns"])
        extract, _ = pyreadstat.read_xport(str(EMBEDDED_NHANES / name))
        assert extract.equals(full[entry["columns"]]), name


def test_extract_refuses_a_truncated_source(synthetic_nhanes, tmp_path):
    spec = load_config(CONFIGS / "cohorts" / "adults_op_2013.yaml").cohort
    source = tmp_path / "source"
    shutil.copytree(synthetic_nhanes / "2013-2014", source / "2013-2014")
    full = synthetic_nhanes / "2013-2014" / "PBCD_H.XPT"
    cut = cut_copy(full, source / "2013-2014" / "PBCD_H.XPT", "record")
    dest = tmp_path / "extract"
    with pytest.raises(DataError, match=rf"^{cut} .*download it again"):
        build_extract([spec], source, dest)
    assert not dest.exists()  # no MANIFEST.json, no extract file
    shutil.copy(full, cut)
    manifest = build_extract([spec], source, dest)
    entry = manifest["files"]["2013-2014/PBCD_H.XPT"]
    assert entry["source_sha256"] == nhanes.sha256(full)
    assert (dest / "MANIFEST.json").is_file()
