"""Shared fixtures: repository paths, the real NHANES folder (if present), synthetic files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bayesmetal.simulate import write_synthetic_nhanes

ROOT = Path(__file__).resolve().parent.parent
SHARED_NHANES = ROOT.parent / "shared" / "data" / "nhanes"
EMBEDDED_NHANES = ROOT / "data" / "nhanes"
CONFIGS = ROOT / "configs"
ALL_CYCLES = ["2011-2012", "2013-2014", "2015-2016", "2017-2018", "2017-2020"]


@pytest.fixture(scope="session")
def shared_nhanes() -> Path:
    """The full CDC files beside the repository; tests using them skip when absent."""
    if not (SHARED_NHANES / "2017-2018" / "DEMO_J.XPT").is_file():
        pytest.skip(
            f"real NHANES files not found at ../shared/data/nhanes (looked in {SHARED_NHANES.name})"
        )
    return SHARED_NHANES


@pytest.fixture(scope="session")
def synthetic_nhanes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic XPT files for every cycle and component, written once per session."""
    folder = tmp_path_factory.mktemp("synthetic_nhanes")
    write_synthetic_nhanes(folder, ALL_CYCLES, n=500, seed=7)
    return folder
