"""Simulation-based calibration: rank statistics, uniformity tests, the simulators, a tiny
end-to-end run, and (slow) SBC of every sampler variant plus a broken sampler it must catch."""

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from bayesmetal.bkmr import sampler
from bayesmetal.bkmr.kernel import low_rank_basis
from bayesmetal.calibration import (
    VARIANTS,
    SbcSettings,
    chi_square_uniformity,
    ecdf_uniformity,
    run_sbc,
    sbc_ranks,
    thin_indices,
    uniformity_table,
    variant_verdicts,
    write_sbc,
)
from bayesmetal.calibration import bkmr as sbc_bkmr
from bayesmetal.calibration.ranks import ecdf_bands, rank_bins

ROOT = Path(__file__).resolve().parent.parent


def test_thinning_spreads_the_kept_draws_evenly():
    kept = thin_indices(1000, 50)
    assert len(kept) == 50 and kept[0] == 0 and kept[-1] == 999
    assert set(np.diff(kept)) <= {20, 21}
    with pytest.raises(ValueError):
        thin_indices(10, 11)


def test_ranks_count_draws_below_and_break_ties_at_random():
    rng = np.random.default_rng(0)
    draws = np.arange(10.0)
    assert sbc_ranks(draws, np.asarray(3.5), rng) == 4
    assert sbc_ranks(draws, np.asarray(-1.0), rng) == 0
    assert sbc_ranks(draws, np.asarray(99.0), rng) == 10
    # a discrete parameter: all 20 draws equal the truth, so the rank is uniform on 0..20
    ties = np.array([sbc_ranks(np.ones(20), np.asarray(1.0), rng) for _ in range(4000)])
    assert ties.min() == 0 and ties.max() == 20
    assert stats.chisquare(np.bincount(ties, minlength=21)).pvalue > 0.001
    # vectors: one rank per element, in 0..L
    ranks = sbc_ranks(rng.integers(0, 2, (20, 5)), np.array([0, 1, 0, 1, 1]), rng)
    assert ranks.shape == (5,) and ranks.min() >= 0 and ranks.max() <= 20


def test_rank_bins_hold_whole_ranks_with_exact_probabilities():
    counts, probs = rank_bins(np.array([0, 10, 12, 49, 50]), 50, 5)
    assert probs.sum() == pytest.approx(1.0) and probs.tolist() == pytest.approx(
        [11 / 51, 10 / 51, 10 / 51, 10 / 51, 10 / 51]
    )
    assert counts.tolist() == [2, 1, 0, 0, 2]


def test_uniform_ranks_pass_and_ranks_piled_at_one_end_fail():
    rng = np.random.default_rng(1)
    uniform = rng.integers(0, 51, 200)
    piled = np.minimum(rng.integers(0, 51, 200), rng.integers(0, 51, 200))
    assert chi_square_uniformity(uniform, 50, 10)[1] > 0.05
    assert ecdf_uniformity(uniform, 50) > 0.05
    assert chi_square_uniformity(piled, 50, 10)[1] < 1e-6
    assert ecdf_uniformity(piled, 50) < 0.001


def test_ecdf_bands_are_simultaneous():
    points, lower, upper = ecdf_bands(100, 50, prob=0.95)
    assert np.all(lower <= points) and np.all(points <= upper)
    rng = np.random.default_rng(2)
    inside = []
    for _ in range(400):
        ranks = rng.integers(0, 51, 100)
        ecdf = (ranks[:, None] < np.arange(1, 51)).mean(0)
        inside.append(np.all((lower <= ecdf) & (ecdf <= upper)))
    assert 0.92 <= np.mean(inside) <= 0.98  # pointwise bands would hold far less often


def _design(variant: str, n: int = 30, m: int = 5, seed: int = 0):
    return sbc_bkmr.bkmr_design(variant, n, m, np.random.default_rng(seed))


@pytest.mark.parametrize("variant", sbc_bkmr.BKMR_VARIANTS)
def test_bkmr_simulators_give_data_of_the_variants_shape(variant):
    data = _design(variant)
    priors = sbc_bkmr.variant_priors(variant)
    truth = sbc_bkmr.draw_truth(data, priors, np.random.default_rng(3))
    y, h = sbc_bkmr.simulate(data, truth, np.random.default_rng(4))
    assert y.shape == h.shape == (30,) and np.isfinite(y).all()
    assert truth["beta"].shape == (sbc_bkmr.COVARIATES,)
    assert np.all(truth["r"][truth["delta"] == 0] == 0)
    assert np.all(truth["r"][truth["delta"] == 1] >= 0.01)  # Pareto(1, 0.01) support
    assert ("sigma_sq" in priors) != (variant == "probit")
    assert ("lambda_ri" in truth) == (variant == "random_intercept")
    assert ("pi" in truth) == (variant != "none")
    if variant == "probit":
        assert set(np.unique(y)) <= {0.0, 1.0} and truth["sigma_sq"] == 1.0
    if variant == "none":
        assert np.all(truth["delta"] == 1)
    if variant == "knots":
        assert data.knots.shape == (max(5, 30 // 4), 5)


def test_hierarchical_truth_has_at_most_one_member_per_group():
    data = _design("hierarchical", m=5)
    assert data.groups.tolist() == [0, 0, 1, 1, 2]
    rng = np.random.default_rng(5)
    deltas = np.array([sbc_bkmr.draw_selection(data, 0.5, rng) for _ in range(2000)])
    per_group = np.stack([np.bincount(data.groups, weights=d) for d in deltas])
    assert per_group.max() == 1 and per_group.min() == 0
    assert per_group.mean() == pytest.approx(0.5, abs=0.03)  # a group is in with prob. pi
    assert deltas[:, :2].sum(0) / deltas[:, :2].sum() == pytest.approx([0.5, 0.5], abs=0.04)
    truth = sbc_bkmr.draw_truth(data, sbc_bkmr.variant_priors("hierarchical"), rng)
    assert np.bincount(data.groups, weights=truth["delta"]).max() <= 1


def test_knots_data_follow_the_predictive_process_prior():
    data = _design("knots", n=20, m=2)
    truth = {
        "beta": np.zeros(2),
        "sigma_sq": 1.0,
        "lambda": 2.0,
        "r": np.array([0.5, 0.0]),
        "delta": np.array([1, 0]),
    }
    rng = np.random.default_rng(6)
    with threadpool_limits(1):  # many tiny solves: BLAS threads only get in the way
        hs = np.array([sbc_bkmr.simulate(data, truth, rng)[1] for _ in range(3000)])
    basis = low_rank_basis(data.z, data.knots, truth["r"])
    assert np.allclose(np.cov(hs, rowvar=False), 2.0 * basis @ basis.T, atol=0.25)
    assert np.allclose(sbc_bkmr.kernel_matrix(data, truth["r"]), basis @ basis.T)


@pytest.mark.parametrize("variant", ["exact", "knots", "random_intercept"])
def test_h_conditional_matches_dense_gaussian_conditioning(variant):
    data = _design(variant, n=16, m=3)
    rng = np.random.default_rng(7)
    r, lam, lam_ri, sigma_sq = np.array([0.4, 0.0, 1.2]), 1.7, 0.6, 0.8
    resid = rng.standard_normal(16)
    k = sbc_bkmr.kernel_matrix(data, r)
    points = np.array([0, 5, 9])
    mean, cov = sbc_bkmr.h_conditional(
        k, sbc_bkmr.v_factor(data, r, lam, lam_ri), resid, lam, sigma_sq, points
    )
    # dense: Var(y) = sigma2 (I + lam K + lam_ri Z Z'), Cov(h, y) = sigma2 lam K
    var_y = np.eye(16) + lam * k
    if data.onehot is not None:
        var_y += lam_ri * data.onehot @ data.onehot.T
    cross = lam * k[points]
    assert np.allclose(mean, cross @ np.linalg.solve(var_y, resid))
    expected = sigma_sq * (
        lam * k[np.ix_(points, points)] - cross @ np.linalg.solve(var_y, cross.T)
    )
    assert np.allclose(cov, expected)


def test_seeds_make_replicates_reproducible_and_distinct():
    settings = SbcSettings(n=12, tune=30, draws=40, keep=8)
    first = run_sbc(["none"], 2, settings, workers=1)
    again = run_sbc(["none"], 2, settings, workers=1)
    pd.testing.assert_frame_equal(first, again)
    by_replicate = first.pivot(index="parameter", columns="replicate", values="rank")
    assert not by_replicate[0].equals(by_replicate[1])


def test_tiny_end_to_end_sbc_writes_the_table_and_figures(tmp_path):
    settings = SbcSettings(n=14, m=2, tune=40, draws=60, keep=9, seed=3)
    ranks = run_sbc(["exact", "glm_gaussian"], 3, settings, workers=1)
    assert set(ranks.columns) == {"variant", "replicate", "parameter", "rank", "L", "n"}
    assert ranks["rank"].between(0, 9).all()
    table = uniformity_table(ranks, bins=2)
    expected = {
        "exact": ["beta[0]", "beta[1]", "lambda", "r[0]", "r[1]", "sigma_sq"]
        + ["delta[0]", "delta[1]", "pi", "h[0]", "h[1]", "h[2]"],
        "glm_gaussian": ["beta[0]", "beta[1]", "gamma[0]", "intercept", "sigma"],
    }
    for variant, names in expected.items():
        rows = table[table["variant"] == variant]
        assert sorted(rows["parameter"]) == sorted(names)
        assert (rows["replicates"] == 3).all() and (rows["L"] == 9).all()
        assert rows["threshold"].iloc[0] == pytest.approx(0.01 / len(names))
    assert variant_verdicts(table)["variant"].tolist() == ["exact", "glm_gaussian"]
    write_sbc(tmp_path, ranks, table, 2, settings)
    for name in ["sbc_ranks.csv", "sbc_summary.csv", "sbc_variants.csv", "settings.csv"]:
        assert (tmp_path / name).is_file()
    for variant in expected:
        assert (tmp_path / f"ranks_{variant}.png").stat().st_size > 1000
        assert (tmp_path / f"ecdf_{variant}.png").stat().st_size > 1000


def test_calibrate_script_writes_its_folder(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("calibrate", ROOT / "scripts" / "calibrate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "sbc"
    args = "--variants none --replicates 2 --n 12 --tune 30 --draws 40 --keep 8 --bins 3"
    script.main([*args.split(), "--workers", "1", "--out", str(out)])
    assert (out / "sbc_summary.csv").is_file() and (out / "ranks_none.png").is_file()
    assert "none" in capsys.readouterr().out


# slow: SBC of every variant. Sizes keep the whole set near 10 minutes on 2 cores; with
# alpha 0.01 per variant (Bonferroni over its parameters) a healthy sampler passes all nine
# variants with probability about 0.9, and the seeds are fixed.
SLOW = SbcSettings(n=40, m=3, tune=500, draws=1000, keep=50, seed=11)
SLOW_REPLICATES, SLOW_BINS = 40, 5


@pytest.fixture(scope="module")
def slow_sbc() -> pd.DataFrame:
    ranks = run_sbc(list(VARIANTS), SLOW_REPLICATES, SLOW, workers=2)
    return uniformity_table(ranks, SLOW_BINS)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_sbc_ranks_are_uniform(slow_sbc, variant):
    rows = slow_sbc[slow_sbc["variant"] == variant]
    failed = rows.loc[~rows["pass"], ["parameter", "p_value"]]
    assert failed.empty, f"{variant}: ranks not uniform for\n{failed.to_string(index=False)}"


def _delta_pi_failures(settings: SbcSettings, replicates: int) -> set[str]:
    ranks = run_sbc(["exact"], replicates, settings, workers=2)
    table = uniformity_table(ranks, SLOW_BINS)
    return set(table.loc[~table["pass"], "parameter"]) & {"pi", "delta[0]", "delta[1]", "delta[2]"}


@pytest.mark.slow
def test_sbc_catches_a_birth_proposal_without_its_normalising_constant(monkeypatch):
    """The real bug this sampler had: log q of the birth proposal lacked -log(2 pi)/2, which
    multiplies every inclusion's posterior odds by 0.4. Small data sets (n = 20) leave many
    inclusions uncertain, where that shows. The same run with the correct density passes, so
    the failure is the bug's. Forked workers inherit the patch."""
    settings = replace(SLOW, n=20, seed=12)
    assert not _delta_pi_failures(settings, 100)
    correct = sampler.BirthProposal.logpdf
    monkeypatch.setattr(
        sampler.BirthProposal,
        "logpdf",
        lambda self, j, r: correct(self, j, r) + 0.5 * np.log(2 * np.pi),
    )
    assert _delta_pi_failures(settings, 100)
