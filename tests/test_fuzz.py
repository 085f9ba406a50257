"""Property-based tests: any small table and any config ends in a result or a named error
(exit 0 or 2), never a traceback or an unexpected failure, never a half-written folder.

Hypothesis runs a fixed, derandomised set of examples so CI is reproducible; set
HYPOTHESIS_PROFILE=fuzz for a longer random search."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bayesmetal.cli import fit_main
from bayesmetal.runs import RUN_MARKER

from .fakesampler import use_fake_sampler
from .toydata import base_config

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

COLUMNS = ["y", "e1", "e2", "age", "sex"]
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(0.01, 100),
    st.integers(-5, 5),
)
CELLS = st.one_of(
    NUMBERS,
    NUMBERS,
    st.none(),
    st.sampled_from(["<LOD", "twelve", "", " ", "male", "female", "é", "NA", "1e400", "-inf"]),
)


def plausible_cohort(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "e1": np.exp(rng.normal(size=n)),
            "e2": np.exp(rng.normal(size=n)),
            "age": rng.uniform(20, 80, n),
            "sex": rng.choice(["male", "female"], n),
        }
    )


@st.composite
def tables(draw) -> pd.DataFrame:
    """A plausible cohort with a few cells replaced by anything, or a wholly random one."""
    n = draw(st.one_of(st.integers(0, 40), st.integers(20, 40)))
    frame = plausible_cohort(n, draw(st.integers(0, 1000))).astype(object)
    if n and draw(st.integers(0, 2)):
        for _ in range(draw(st.integers(1, 3))):
            frame.iat[draw(st.integers(0, n - 1)), draw(st.integers(0, 4))] = draw(CELLS)
    if draw(st.integers(0, 5)) == 0:
        frame = pd.DataFrame({c: draw(st.lists(CELLS, min_size=n, max_size=n)) for c in COLUMNS})
    return frame


def config() -> dict:
    """The shared table config with a one-chain sampler (examples must be quick)."""
    mapping = base_config()
    mapping["sampler"] |= {"chains": 1, "tune": 5, "draws": 10, "seed": 1}
    return mapping


VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 40),
        st.floats(allow_nan=False, width=32),
        st.text(max_size=8),
        st.sampled_from(["glm", "bwqs", "multi", "single", "quantile", "Normal", "HalfNormal"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
KEYS = [
    "table.outcome",
    "table.family",
    "table.exposures",
    "table.covariates",
    "table.categorical",
    "table.id",
    "table.encoding",
    "model.name",
    "model.kind",
    "model.quantiles",
    "model.direction",
    "priors.beta",
    "priors.sigma",
    "priors.intercept",
    "sampler.draws",
    "sampler.tune",
    "sampler.chains",
    "sampler.seed",
    "sampler.target_accept",
    "output.name",
    "summaries.targets.min_ess",
    "include",
    "unknown",
]
PRIOR = st.fixed_dictionaries(
    {"distribution": st.sampled_from(["Normal", "HalfNormal", "Gamma", "Gama", "Uniform"])},
    optional={
        "mu": st.floats(-5, 5),
        "sigma": st.floats(-2, 5),
        "alpha": st.floats(-1, 3),
        "beta": st.floats(-1, 3),
        "lower": st.floats(-2, 2),
        "upper": st.floats(-2, 2),
        "sd": st.floats(0, 2),
    },
)


# values of the right kind for a key (still often invalid in combination)
PLAUSIBLE = {
    "table.outcome": st.sampled_from(["y", "e1", "sex"]),
    "table.family": st.sampled_from(["gaussian", "bernoulli"]),
    "table.exposures": st.lists(st.sampled_from(["e1", "e2", "age"]), min_size=1, max_size=3),
    "table.covariates": st.lists(st.sampled_from(["age", "sex", "e2"]), max_size=3),
    "table.categorical": st.lists(st.sampled_from(["sex", "age"]), max_size=1),
    "table.id": st.sampled_from([None, "age"]),
    "table.encoding": st.sampled_from(["utf-8", "cp1252", "latin-1"]),
    "model.name": st.sampled_from(["glm", "bwqs"]),
    "model.kind": st.sampled_from(["multi", "single", "quantile"]),
    "model.quantiles": st.integers(2, 6),
    "model.direction": st.sampled_from(["positive", "negative"]),
    "priors.beta": PRIOR,
    "priors.sigma": PRIOR,
    "priors.intercept": PRIOR,
    "sampler.draws": st.integers(1, 30),
    "sampler.tune": st.integers(0, 20),
    "sampler.chains": st.integers(1, 3),
    "sampler.seed": st.integers(0, 2**32),
    "sampler.target_accept": st.floats(0.5, 0.99),
    "output.name": st.from_regex(r"[A-Za-z0-9._/-]{1,12}", fullmatch=True),
    "summaries.targets.min_ess": st.floats(1, 1000),
}


@st.composite
def configs(draw) -> dict:
    """The base config with a few keys set to anything (or a plausible prior)."""
    mapping = config()
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(KEYS))
        value = draw(PLAUSIBLE.get(key, VALUES) if draw(st.integers(0, 3)) else VALUES)
        path = key.split(".")
        node = mapping
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[path[-1]] = value
    return mapping


def fit_in(folder: Path, frame: pd.DataFrame, mapping: dict) -> tuple[int, str]:
    frame.to_csv(folder / "cohort.csv", index=False)
    (folder / "c.yaml").write_text(yaml.safe_dump(mapping))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = fit_main([str(folder / "c.yaml"), "--out", str(folder / "run")])
    return code, err.getvalue()


def check_outcome(folder: Path, code: int, err: str) -> None:
    """Success with a complete run folder, or one named error and nothing written."""
    event(f"exit {code}")
    assert code in (0, 2), err
    assert "Traceback" not in err
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert not leftovers, leftovers
    run = folder / "run"
    if code == 0:
        assert (run / RUN_MARKER).is_file() and list(run.glob("idata*.nc"))
        assert (run / "report.html").is_file()
    else:
        assert err.startswith("error: ") and not run.exists(), err


@pytest.fixture()
def fake_sampler(monkeypatch):
    use_fake_sampler(monkeypatch)


@given(frame=tables())
def test_any_small_table_fits_or_is_refused_by_name(fake_sampler, frame):
    with tempfile.TemporaryDirectory() as tmp:
        code, err = fit_in(Path(tmp), frame, config())
        check_outcome(Path(tmp), code, err)


@given(mapping=configs())
def test_any_config_fits_or_is_refused_by_name(fake_sampler, mapping):
    with tempfile.TemporaryDirectory() as tmp:
        code, err = fit_in(Path(tmp), plausible_cohort(60, 1), mapping)
        check_outcome(Path(tmp), code, err)
