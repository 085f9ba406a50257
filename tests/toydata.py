"""Simulated data with known truth for model tests (fixed seeds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayesmetal.design import Design, make_design


def predictors(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Two log-normal exposures (e1, e2), a numeric (age) and a categorical covariate (sex)."""
    return pd.DataFrame(
        {
            "e1": np.exp(rng.normal(0, 1, n)),
            "e2": np.exp(rng.normal(1, 0.5, n)),
            "age": rng.uniform(20, 80, n),
            "sex": pd.Categorical(rng.choice(["male", "female"], n), ["male", "female"]),
        }
    )


def glm_frame(n: int, family: str, seed: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """`predictors` and an outcome with known coefficients."""
    rng = np.random.default_rng(seed)
    frame = predictors(rng, n)
    truth = {"e1": 0.4, "e2": -0.6}
    eta = 0.2 + truth["e1"] * np.log(frame.e1) + truth["e2"] * np.log(frame.e2)
    eta = eta + 0.01 * (frame.age - 50) + 0.3 * (frame.sex == "female")
    if family == "gaussian":
        frame["y"] = eta + rng.normal(0, 1.0, n)
    else:
        frame["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)
    return frame, truth


TRUE_WEIGHTS = np.array([0.55, 0.3, 0.15, 0.0, 0.0, 0.0])


def bwqs_design(n: int, family: str, b1: float, seed: int) -> Design:
    """Six exposures, the first three carry the index with TRUE_WEIGHTS; one covariate."""
    rng = np.random.default_rng(seed)
    m = len(TRUE_WEIGHTS)
    correlated = rng.multivariate_normal(np.zeros(m), 0.3 + 0.7 * np.eye(m), n)
    frame = pd.DataFrame(np.exp(correlated), columns=[f"x{j + 1}" for j in range(m)])
    frame["age"] = rng.uniform(20, 80, n)
    scores = np.column_stack([pd.qcut(frame[c], 4, labels=False) for c in frame.columns[:m]])
    eta = -0.3 + b1 * scores @ TRUE_WEIGHTS + 0.01 * (frame["age"] - 50)
    if family == "gaussian":
        frame["y"] = eta + rng.normal(0, 1.0, n)
    else:
        frame["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)
    frame["SEQN"] = np.arange(n)
    return make_design(frame, "y", family, list(frame.columns[:m]), ["age"], 4)


def base_config(path: str = "cohort.csv", **table) -> dict:
    """A user's own table and a multi-metal GLM on it."""
    return {
        "table": {
            "path": path,
            "outcome": "y",
            "family": "gaussian",
            "exposures": ["e1", "e2"],
            "covariates": ["age", "sex"],
            **table,
        },
        "model": {"name": "glm", "kind": "multi"},
        "sampler": {"chains": 2, "tune": 10, "draws": 20, "seed": 5, "progressbar": False},
        "output": {"root": "runs"},
    }


def bkmr_table_config(folder: Path, **sampler) -> Path:
    """A small BKMR run on a CSV (n = 100, three exposures, age, four sites) with knots and a
    random intercept, so that every stored array is used: 2 chains of the Gibbs engine, a few
    seconds. Writes data.csv and bkmr.yaml in `folder`; `sampler` keys override."""
    import yaml

    rng = np.random.default_rng(11)
    n = 100
    frame = pd.DataFrame(np.exp(rng.normal(size=(n, 3))), columns=["a", "b", "c"])
    frame["age"] = rng.normal(size=n)
    frame["site"] = np.arange(n) % 4
    frame["y"] = np.log(frame["a"]) + 0.3 * frame["age"] + rng.normal(0, 0.5, n)
    frame.to_csv(folder / "data.csv", index=False)
    config = {
        "table": {
            "path": "data.csv",
            "outcome": "y",
            "family": "gaussian",
            "exposures": ["a", "b", "c"],
            "covariates": ["age"],
            "group": "site",
        },
        "model": {
            "name": "bkmr",
            "knots": 10,
            "random_intercept": "site",
            "summaries": {"draws_for_h": 10, "ngrid": 5},
        },
        "sampler": {"chains": 2, "tune": 30, "draws": 20, "seed": 3, **sampler},
    }
    path = folder / "bkmr.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
