"""Rank statistics of simulation-based calibration and tests of their uniformity.

When data are simulated from the prior and the model a sampler assumes, the rank of the true
value among L posterior draws is uniform on 0..L for every parameter (Talts et al. 2018).
Ties (a discrete delta_m, or r_m = 0 when an exposure is out) are broken at random, which
keeps the rank uniform (Modrak et al. 2023). Uniformity is tested with a chi-square on bins
and with the ECDF of the ranks against simultaneous bands (Sailynoja et al. 2022).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats

ECDF_SIMULATIONS = 4000  # uniform samples behind the ECDF bands and the ECDF p-value


def thin_indices(total: int, keep: int) -> np.ndarray:
    """`keep` indices spread evenly over `total` draws: thinning, so that the kept draws are
    close to independent and autocorrelation does not distort the ranks."""
    if not 1 <= keep <= total:
        raise ValueError(f"cannot keep {keep} of {total} draws")
    return np.linspace(0, total - 1, keep).round().astype(int)


def sbc_ranks(draws: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of `truth` (shape S) among `draws` (shape (L, *S)): #(draws < truth) plus a
    uniform integer in 0..#(draws == truth), so ties give uniform ranks too; values 0..L."""
    below = (draws < truth).sum(axis=0)
    ties = (draws == truth).sum(axis=0)
    return np.asarray(below + rng.integers(0, ties + 1))


def rank_all(
    draws: dict[str, np.ndarray], truth: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, int]:
    """Ranks of every scalar: a vector parameter `beta` gives 'beta[0]', 'beta[1]', ..."""
    ranks: dict[str, int] = {}
    for name, values in draws.items():
        found = sbc_ranks(values, np.asarray(truth[name]), rng)
        if found.ndim == 0:
            ranks[name] = int(found)
        else:
            ranks |= {f"{name}[{i}]": int(v) for i, v in enumerate(found.ravel())}
    return ranks


def rank_bins(ranks: np.ndarray, n_draws: int, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of ranks (0..n_draws) in `bins` bins of whole ranks, and each bin's probability
    under uniformity (bins differ by one rank in width when n_draws + 1 is not a multiple)."""
    if not 2 <= bins <= n_draws + 1:
        raise ValueError(f"{bins} bins for ranks 0..{n_draws}")
    which = np.arange(n_draws + 1) * bins // (n_draws + 1)
    probs = np.bincount(which, minlength=bins) / (n_draws + 1)
    return np.bincount(which[np.asarray(ranks)], minlength=bins), probs


def chi_square_uniformity(ranks: np.ndarray, n_draws: int, bins: int) -> tuple[float, float]:
    """Pearson chi-square statistic of the binned ranks against uniformity, and its p-value
    (bins - 1 degrees of freedom)."""
    counts, probs = rank_bins(ranks, n_draws, bins)
    result = stats.chisquare(counts, probs * counts.sum())
    return float(result.statistic), float(result.pvalue)


def ecdf_counts(ranks: np.ndarray, n_draws: int) -> np.ndarray:
    """#(rank < i) for i = 1..n_draws, per row of `ranks` (shaped (samples, R) or (R,))."""
    rows = np.atleast_2d(ranks)
    offsets = rows + (n_draws + 1) * np.arange(len(rows))[:, None]
    counts = np.bincount(offsets.ravel(), minlength=len(rows) * (n_draws + 1))
    cumulative = counts.reshape(len(rows), n_draws + 1).cumsum(axis=1)[:, :n_draws]
    return cumulative.reshape(*np.shape(ranks)[:-1], n_draws)


def _min_tail_probability(counts: np.ndarray, replicates: int, n_draws: int) -> np.ndarray:
    """Smallest two-sided binomial tail probability of the ECDF over the evaluation points:
    Sailynoja et al.'s statistic (small when the ECDF leaves its pointwise bands anywhere)."""
    cdf = np.arange(1, n_draws + 1) / (n_draws + 1)
    lower = stats.binom.cdf(counts, replicates, cdf)
    upper = stats.binom.sf(counts - 1, replicates, cdf)
    return np.minimum(1.0, 2 * np.minimum(lower, upper)).min(axis=-1)


@lru_cache(maxsize=64)
def _null_statistics(replicates: int, n_draws: int) -> np.ndarray:
    """The statistic under uniform ranks, by simulation (fixed seed: reproducible bands)."""
    rng = np.random.default_rng(20220101)
    ranks = rng.integers(0, n_draws + 1, size=(ECDF_SIMULATIONS, replicates))
    return np.sort(_min_tail_probability(ecdf_counts(ranks, n_draws), replicates, n_draws))


def ecdf_uniformity(ranks: np.ndarray, n_draws: int) -> float:
    """p-value of the ECDF test: the share of uniform samples whose ECDF strays at least as
    far from the diagonal at some point as the observed one."""
    ranks = np.asarray(ranks)
    observed = _min_tail_probability(ecdf_counts(ranks, n_draws), len(ranks), n_draws)
    null = _null_statistics(len(ranks), n_draws)
    return float((np.searchsorted(null, observed, side="right") + 1) / (len(null) + 1))


def ecdf_bands(
    replicates: int, n_draws: int, prob: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation points i / (L + 1) and simultaneous `prob` bands of the rank ECDF: the
    pointwise binomial bands at the level that makes the whole ECDF stay inside them with
    probability `prob` under uniformity."""
    cdf = np.arange(1, n_draws + 1) / (n_draws + 1)
    gamma = float(np.quantile(_null_statistics(replicates, n_draws), 1 - prob))
    lower = stats.binom.ppf(gamma / 2, replicates, cdf) / replicates
    upper = stats.binom.ppf(1 - gamma / 2, replicates, cdf) / replicates
    return cdf, lower, upper


def uniformity_table(ranks: pd.DataFrame, bins: int, alpha: float = 0.01) -> pd.DataFrame:
    """One row per variant and parameter: replicates, n, L, chi-square statistic and p-value,
    ECDF p-value, and `pass` (chi-square p above alpha / number of parameters of the variant:
    Bonferroni, so a healthy variant fails with probability about alpha)."""
    rows = []
    for (variant, parameter), group in ranks.groupby(["variant", "parameter"], sort=False):
        n_draws = int(group["L"].iloc[0])
        statistic, p_value = chi_square_uniformity(group["rank"].to_numpy(), n_draws, bins)
        rows.append(
            {
                "variant": variant,
                "parameter": parameter,
                "replicates": len(group),
                "n": int(group["n"].iloc[0]),
                "L": n_draws,
                "statistic": round(statistic, 3),
                "p_value": p_value,
                "ecdf_p_value": ecdf_uniformity(group["rank"].to_numpy(), n_draws),
            }
        )
    table = pd.DataFrame(rows)
    table["threshold"] = alpha / table.groupby("variant")["parameter"].transform("size")
    table["pass"] = table["p_value"] > table["threshold"]
    return table


def variant_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: parameters tested, the smallest p-value and its parameter, the
    Bonferroni threshold, the parameters that failed, and whether the variant passes."""
    rows = []
    for variant, group in table.groupby("variant", sort=False):
        worst = group.loc[group["p_value"].idxmin()]
        rows.append(
            {
                "variant": variant,
                "parameters": len(group),
                "min_p_value": worst["p_value"],
                "worst_parameter": worst["parameter"],
                "threshold": worst["threshold"],
                "failed": ", ".join(group.loc[~group["pass"], "parameter"]),
                "pass": bool(group["pass"].all()),
            }
        )
    return pd.DataFrame(rows)
