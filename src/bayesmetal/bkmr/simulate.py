"""Simulated BKMR data with a known h (R: SimData), for tests and scripts/bench.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmetal.design import Design, make_design

ACTIVE = (0, 1, 2, 3)  # exposures that enter h; the others are null


def h_true(z: np.ndarray) -> np.ndarray:
    """A linear, a non-linear and an interaction term in four of the exposures."""
    return 0.5 * z[:, 0] + np.sin(z[:, 1]) + 0.4 * z[:, 2] * z[:, 3]


def sim_bkmr(
    n: int, m: int = 7, n_covariates: int = 3, noise_sd: float = 0.5, seed: int = 0
) -> tuple[Design, np.ndarray]:
    """A Design with correlated log-normal exposures, covariates and y = h(z) + X beta + e.

    Returns the design and h at the observed points (on the design's standardised scale,
    plus the covariates' mean effect, which the model's h carries).
    """
    rng = np.random.default_rng(seed)
    corr = 0.2 + 0.8 * np.eye(m)
    logs = rng.multivariate_normal(np.zeros(m), corr, n)
    frame = pd.DataFrame(np.exp(logs), columns=[f"z{j + 1}" for j in range(m)])
    cov = rng.standard_normal((n, n_covariates))
    for k in range(n_covariates):
        frame[f"c{k + 1}"] = cov[:, k]
    names, covs = list(frame.columns[:m]), list(frame.columns[m:])
    placeholder = frame.assign(y=np.arange(n, dtype=float))  # only z is read from this design
    design = make_design(placeholder, "y", "gaussian", names, covs, id_column="none")
    h = h_true(design.z)
    beta = np.linspace(0.5, -0.5, n_covariates)
    frame["y"] = h + design.X @ beta + rng.normal(0, noise_sd, n)
    return make_design(frame, "y", "gaussian", names, covs, id_column="none"), h
