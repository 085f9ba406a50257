"""Posterior draws as flat arrays and interval summaries (equal-tailed, explicit prob), and
the covariate coefficients of any fit."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayesmetal.arviz_api import InferenceData


def sd(samples: np.ndarray) -> np.ndarray:
    """Posterior SD along the first axis (ddof 1); NaN, without numpy's 'Degrees of freedom
    <= 0' warning, when there is a single draw."""
    if len(samples) < 2:
        return np.full(samples.shape[1:], np.nan)
    return samples.std(axis=0, ddof=1)


def draws(idata: InferenceData, var: str) -> np.ndarray:
    """Draws of a variable with chains pooled: shape (samples, *variable shape)."""
    values = idata.posterior[var].to_numpy()
    return values.reshape(-1, *values.shape[2:])


def interval(samples: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed credible interval along the first axis."""
    tail = (1 - prob) / 2
    return np.quantile(samples, tail, axis=0), np.quantile(samples, 1 - tail, axis=0)


def prob_direction(samples: np.ndarray) -> np.ndarray:
    """Posterior probability of the sign that the posterior mostly has (0.5 to 1)."""
    positive = (samples > 0).mean(axis=0)
    return np.maximum(positive, 1 - positive)


COEFFICIENT_DIMS = (("covariate",), ("coef",))  # GLM / BWQS / qgcomp gamma; BKMR beta


def covariate_coefficients(
    idata: InferenceData,
    prob: float,
    fit_label: str,
    scaling: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """One row per covariate coefficient of a fit: every posterior variable whose only dim is
    `covariate` or `coef` (COEFFICIENT_DIMS), on the linear predictor's scale, with its mean,
    median, sd, equal-tailed interval and probability of direction. `per` says what one unit
    of the coded covariate is: one SD of a numeric covariate (standardised in the design;
    `scaling` maps it to (centre, sd)), or the level against the reference level."""
    scaling = scaling or {}
    tables = []
    for name, variable in idata.posterior.data_vars.items():
        dims = tuple(variable.dims[2:])
        if dims not in COEFFICIENT_DIMS or variable.sizes[dims[0]] == 0:
            continue
        samples = draws(idata, str(name))
        low, high = interval(samples, prob)
        covariates = [str(c) for c in variable.coords[dims[0]].to_numpy()]
        tables.append(
            pd.DataFrame(
                {
                    "fit": fit_label,
                    "variable": str(name),
                    "covariate": covariates,
                    "per": [_unit(c, scaling) for c in covariates],
                    "mean": samples.mean(axis=0),
                    "median": np.median(samples, axis=0),
                    "sd": sd(samples),
                    "lower": low,
                    "upper": high,
                    "prob_direction": prob_direction(samples),
                    "ci_prob": prob,
                }
            )
        )
    columns = ["fit", "variable", "covariate", "per", "mean", "median", "sd", "lower", "upper"]
    if not tables:
        return pd.DataFrame(columns=[*columns, "prob_direction", "ci_prob"])
    return pd.concat(tables, ignore_index=True)


def _unit(covariate: str, scaling: Mapping[str, tuple[float, float]]) -> str:
    """'1 SD (12.3)' for a standardised numeric covariate, 'vs reference level' for a level
    column `name[level]`, '' where the coding is unknown."""
    if covariate in scaling:
        return f"1 SD ({scaling[covariate][1]:.3g})"
    if covariate.endswith("]") and "[" in covariate:
        return "vs reference level"
    return ""
