"""The BKMR Gibbs sampler shown correct where it could be wrong: it returns the prior when the
likelihood cannot see the parameters, its likelihoods equal independent computations, and
numerical failures reject proposals instead of ending chains."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from bayesmetal.bkmr import sampler as sampler_module
from bayesmetal.bkmr.kernel import (
    exact_factor,
    gaussian_loglik,
    kernel,
    knots_factor,
    sigma_marginal_loglik,
)
from bayesmetal.bkmr.priors import DEFAULT_PRIORS
from bayesmetal.bkmr.sampler import BkmrData, sample_chains
from bayesmetal.calibration.prior_recovery import (
    VARIANTS,
    prior_checks,
    recover,
    recovery_data,
    recovery_priors,
)
from bayesmetal.errors import ConfigError

Z_LIMIT = 4.0  # |estimate - prior value| in MCSEs; ~30 checks per variant


@pytest.mark.parametrize("variant", VARIANTS)
def test_without_likelihood_the_sampler_returns_the_prior(variant):
    """Every move's prior, proposal and move-choice terms: with the likelihood off, inclusion
    probabilities are E[pi] (or E[pi] / group size), and r, lambda, lambda_ri, pi, beta and
    sigma2 follow their priors (the birth density's missing -log(2 pi)/2 fails this)."""
    table = recover(variant, likelihood=False)
    bad = table[table["z"].abs() > Z_LIMIT]
    assert bad.empty, bad.to_string()
    assert len(table) >= 8


@pytest.mark.parametrize("variant", ["exact", "hierarchical"])
def test_constant_exposures_leave_selection_at_its_prior(variant):
    """With every exposure constant the kernel is 1 for any r: the likelihood runs as usual
    but cannot see r, delta or pi, so they must follow their priors."""
    table = recover(variant, likelihood=True, seed=4)
    bad = table[table["z"].abs() > Z_LIMIT]
    assert bad.empty, bad.to_string()


def _unnormalised_density(x, mu, sd):
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd)


@pytest.mark.parametrize(
    "variant, name, broken",
    [
        ("exact", "_log_normal_pdf", _unnormalised_density),  # birth density without its constant
        ("hierarchical", "_out_move_probability", lambda size: 1.0),  # move choice left out
    ],
)
def test_prior_recovery_detects_the_shipped_move_bugs(monkeypatch, variant, name, broken):
    """The check has power: each of the two bugs the shipped sampler had fails it."""
    monkeypatch.setattr(sampler_module, name, broken)
    data = recovery_data(variant, likelihood=False)
    priors = recovery_priors()
    chains, _ = sample_chains(data, priors, tune=500, draws=4000, chains=1, seed=3)
    table = prior_checks(chains, data, priors, all_parameters=False)
    selection = table[table["quantity"].str.contains("PIP")]
    assert (selection["z"].abs() > Z_LIMIT).any(), selection.to_string()


def _residual_and_v(n: int = 30, seed: int = 1):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3))
    r, lam = np.array([0.4, 0.0, 1.3]), 2.5
    return rng, z, r, lam, rng.standard_normal(n)


def test_sigma_collapsed_likelihood_is_a_multivariate_t():
    """sigma2 ~ InverseGamma(a, b) integrated out of N(0, sigma2 V): a multivariate t with
    2a degrees of freedom and scale (b / a) V, computed by scipy."""
    _, z, r, lam, resid = _residual_and_v()
    a, b = 2.5, 1.7
    v = np.eye(len(z)) + lam * kernel(z, z, r)
    expected = stats.multivariate_t(np.zeros(len(z)), (b / a) * v, df=2 * a).logpdf(resid)
    assert sigma_marginal_loglik(resid, exact_factor(z, r, lam), a, b) == pytest.approx(expected)


def test_knots_likelihood_is_the_dense_predictive_process_gaussian():
    """Woodbury with knots equals the dense Gaussian whose covariance is the
    predictive-process kernel K_nk (K_kk + 1e-6 I)^-1 K_kn, with and without a random
    intercept (a t after integrating sigma2 out)."""
    rng, z, r, lam, resid = _residual_and_v()
    knots = z[rng.choice(len(z), 8, replace=False)] + 0.1
    k_kk = kernel(knots, knots, r) + 1e-6 * np.eye(8)
    k_nk = kernel(z, knots, r)
    pp = k_nk @ np.linalg.solve(k_kk, k_nk.T)
    onehot = (np.arange(len(z))[:, None] % 4 == np.arange(4)[None]) * 1.0
    for group, lam_ri in ((None, 0.0), (onehot, 0.7)):
        v = np.eye(len(z)) + lam * pp
        if group is not None:
            v += lam_ri * onehot @ onehot.T
        factor = knots_factor(z, knots, r, lam, group, lam_ri)
        expected = stats.multivariate_normal(np.zeros(len(z)), 0.3 * v).logpdf(resid)
        assert gaussian_loglik(resid, factor, 0.3) == pytest.approx(expected, rel=1e-8)
        expected_t = stats.multivariate_t(np.zeros(len(z)), (2.0 / 3.0) * v, df=6).logpdf(resid)
        assert sigma_marginal_loglik(resid, factor, 3.0, 2.0) == pytest.approx(expected_t)


def test_random_intercept_likelihood_adds_lambda_ri_zz():
    """Exact kernel with a random intercept: V = I + lambda K + lambda_ri Z Z'."""
    _, z, r, lam, resid = _residual_and_v()
    onehot = (np.arange(len(z))[:, None] % 3 == np.arange(3)[None]) * 1.0
    same = onehot @ onehot.T
    v = np.eye(len(z)) + lam * kernel(z, z, r) + 0.4 * same
    expected = stats.multivariate_normal(np.zeros(len(z)), v).logpdf(resid)
    assert gaussian_loglik(resid, exact_factor(z, r, lam, same, 0.4)) == pytest.approx(expected)


def test_null_data_never_end_a_chain():
    """The shipped sampler lost 3 of 4 chains here: every exposure out, warm-up inflated the
    lambda step until lambda ~ 1e15 and the Cholesky raised. Now the step is bounded and
    log-scale parameters stay within the sampler's range."""
    rng = np.random.default_rng(20240601)
    n = 150
    data = BkmrData(
        y=rng.standard_normal(n), X=rng.standard_normal((n, 1)), z=rng.standard_normal((n, 3))
    )
    chains, _ = sample_chains(data, DEFAULT_PRIORS, tune=1000, draws=200, chains=4, seed=1)
    assert len(chains) == 4
    for chain in chains:
        assert np.all(np.abs(np.log(chain.draws["lambda"])) <= sampler_module.LOG_BOUND)
        assert chain.resume["block_scale"] <= sampler_module.SCALE_RANGE[1]


def test_a_failed_factorisation_is_a_rejected_proposal(monkeypatch):
    """A LinAlgError in a proposal rejects it and is counted; the chain goes on."""
    real = sampler_module.exact_factor
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1 and calls["n"] % 7 == 0:
            raise np.linalg.LinAlgError("not positive definite")
        return real(*args, **kwargs)

    monkeypatch.setattr(sampler_module, "exact_factor", flaky)
    data = recovery_data("exact", likelihood=True, n=25)
    chains, _ = sample_chains(data, recovery_priors(), tune=50, draws=100, chains=1, seed=2)
    assert chains[0].stats["factorisation_failures"] > 0
    assert chains[0].draws["lambda"].shape == (100,)


def test_flip_records_count_proposals_per_exposure():
    """sample_stats 'flip' records, per draw and exposure, the in/out proposal and its fate;
    accepted flips are exactly the changes of delta between consecutive draws."""
    data = recovery_data("exact", likelihood=False)
    chains, _ = sample_chains(data, recovery_priors(), tune=100, draws=500, chains=1, seed=5)
    flips, delta = chains[0].sample_stats["flip"], chains[0].draws["delta"]
    changed = np.diff(delta, axis=0) != 0
    accepted = np.isin(flips[1:], [sampler_module.IN_ACCEPTED, sampler_module.OUT_ACCEPTED])
    assert np.array_equal(changed, accepted)
    assert (flips != sampler_module.NO_MOVE).mean() == pytest.approx(0.5, abs=0.1)  # m/3 of 4


def test_chains_start_apart():
    """Dispersed starts: with two chains every indicator starts in both states."""
    starts = [
        sampler_module.starting_selection(5, None, c, np.random.default_rng(0)) for c in (0, 1)
    ]
    assert np.all(starts[0] != starts[1])
    groups = np.array([0, 0, 1, 1, 2])
    hier = [
        sampler_module.starting_selection(5, groups, c, np.random.default_rng(0)) for c in (0, 1)
    ]
    for g in range(3):
        members = groups == g
        assert hier[0][members].sum() + hier[1][members].sum() == 1


def test_a_stuck_birth_move_is_flagged_not_read_as_a_decisive_pip(monkeypatch):
    """Break the birth proposal (r_m = e^14: the kernel then ignores the exposure's
    neighbours and no birth is ever accepted): the chains report PIPs of exactly 0 for an
    exposure with real evidence, and the Rao-Blackwellised check flags the move as stuck."""
    from bayesmetal.calibration.reference import weak_signal_design
    from bayesmetal.diagnostics import check
    from bayesmetal.run_schema import DiagnosticTargets, SamplerSpec
    from bayesmetal.workflow import fit_design

    monkeypatch.setattr(sampler_module.BirthProposal, "draw", lambda self, j, rng: np.exp(14.0))
    case = weak_signal_design("component", n=80, seed=0)
    sampler = SamplerSpec(chains=2, tune=200, draws=300, seed=1)
    idata = fit_design(case.design, case.spec, sampler)[1]["bkmr"]
    table = check(idata, ["delta"], DiagnosticTargets(), "bkmr").set_index("parameter")
    assert idata.posterior["delta"].sel(exposure="a").to_numpy().max() == 0
    assert not table.loc["delta[a]", "ok"] and "stuck" in table.loc["delta[a]", "problems"]


@pytest.mark.parametrize("amplitude, frequency", [(0.5, 5), (0.6, 3), (1.0, 8)])
def test_conditional_pip_integrates_r_over_the_whole_prior(amplitude, frequency):
    """Curved effects put the likelihood's peak at r = 1-10, in the top 1% of the default
    prior, where a grid of prior quantiles had no point (it gave 0.2 for a conditional PIP of
    1, calling a decisive inclusion stuck). Reference: 3,000 points in log r from 0.01 to
    e^15, with the Pareto(1, 0.01) density 0.01 / r per unit of log r."""
    from scipy.special import logsumexp

    from bayesmetal.bkmr.inclusion import conditional_pip
    from bayesmetal.bkmr.sampler import ChainState

    rng = np.random.default_rng(0)
    z = rng.standard_normal((60, 2))
    y = amplitude * np.sin(frequency * z[:, 0]) + rng.normal(0, 0.3, 60)
    data = BkmrData(y=y, X=np.zeros((60, 0)), z=z)
    priors = recovery_priors()
    draws = {
        "lambda": np.full(4, 10.0),
        "beta": np.zeros((4, 0)),
        "r": np.zeros((4, 2)),
        "pi": np.full(4, 0.5),
    }
    state = ChainState(data, priors)
    state.lam = 10.0
    log_r = np.linspace(np.log(0.01), 15, 3000)
    loglik = [state.loglik(state.make_factor(np.array([np.exp(v), 0.0]), 10.0)) for v in log_r]
    log_in = logsumexp(np.array(loglik) + np.log(0.01) - log_r + np.log(log_r[1] - log_r[0]))
    log_out = state.loglik(state.make_factor(np.zeros(2), 10.0))
    reference = 1 / (1 + np.exp(log_out - log_in))
    assert conditional_pip(data, priors, draws, 0) == pytest.approx(reference, abs=0.01)


def test_priors_the_sampler_would_truncate_are_refused():
    from bayesmetal.errors import ConfigError

    wide = recovery_priors() | {"lambda": {"distribution": "LogNormal", "mu": 0, "sigma": 10}}
    with pytest.raises(ConfigError, match="priors.lambda: .* outside"):
        sample_chains(recovery_data("exact", False), wide, tune=5, draws=5, chains=1, seed=1)


def _weighted_and_duplicated(knots: bool, seed: int = 2):
    """The same data twice: persons with weight 2 (or 3) as one weighted row, and as two (or
    three) identical rows of unweighted data: N(y; mu, s2)^w is N(y; mu, s2 / w) up to a
    constant, and identical rows share h, so the two likelihoods differ by a constant."""
    rng = np.random.default_rng(seed)
    n = 25
    z = rng.standard_normal((n, 3))
    X = rng.standard_normal((n, 2))
    y = rng.standard_normal(n)
    weights = rng.choice([1, 2, 3], n).astype(float)
    repeat = weights.astype(int)
    group = np.arange(n) % 4
    knot_points = z[:8] + 0.05 if knots else None
    weighted = BkmrData(y, X, z, knots=knot_points, random_intercept=group, weights=weights)
    duplicated = BkmrData(
        np.repeat(y, repeat),
        np.repeat(X, repeat, axis=0),
        np.repeat(z, repeat, axis=0),
        knots=knot_points,
        random_intercept=np.repeat(group, repeat),
    )
    return weighted, duplicated


def _state(data: BkmrData, r, lam, beta, lam_ri=0.7, sigma_sq=0.8):
    state = sampler_module.ChainState(data, DEFAULT_PRIORS)
    state.beta, state.rho, state.lam, state.lam_ri = beta, r, lam, lam_ri
    state.delta, state.sigma_sq = (r > 0).astype(int), sigma_sq
    state.rho = np.where(r > 0, r, 1.0)
    state.factor = state.make_factor(state.r, lam)
    return state


@pytest.mark.parametrize("knots", [False, True])
def test_weighted_pseudo_likelihood_is_the_likelihood_of_duplicated_rows(knots):
    """Survey weights (the weighted pseudo-likelihood): the collapsed likelihood, and the
    exact conditionals of beta and sigma2, equal those of the data with each person repeated
    w times, at every parameter value (likelihood differences, and draws from one seed)."""
    weighted, duplicated = _weighted_and_duplicated(knots)
    assert weighted.count == len(duplicated.y)
    settings = [
        (np.array([0.4, 0.0, 1.3]), 2.5, np.array([0.3, -0.2])),
        (np.array([1.1, 0.6, 0.0]), 0.4, np.array([-0.5, 0.1])),
        (np.array([0.0, 0.0, 2.0]), 7.0, np.array([0.0, 0.9])),
    ]
    gaps = []
    for r, lam, beta in settings:
        a, b = _state(weighted, r, lam, beta), _state(duplicated, r, lam, beta)
        gaps.append(a.loglik(a.factor) - b.loglik(b.factor))
        prior = {"mu": 0.0, "sigma": 10.0}
        draws = [
            sampler_module._draw_beta(s, d, prior, np.random.default_rng(9))
            for s, d in ((a, weighted), (b, duplicated))
        ]
        assert np.allclose(*draws, rtol=1e-8, atol=1e-10)
        sigma = {"alpha": 1.0, "beta": 0.5}
        draws = [
            sampler_module._draw_sigma_sq(s, d, sigma, np.random.default_rng(9))
            for s, d in ((a, weighted), (b, duplicated))
        ]
        assert draws[0] == pytest.approx(draws[1], rel=1e-10)
    assert np.ptp(gaps) < 1e-8, gaps
    unweighted = dataclasses.replace(weighted, weights=None)
    c = _state(unweighted, *settings[0])
    d = _state(unweighted, *settings[1])
    plain = c.loglik(c.factor) - d.loglik(d.factor)
    a, b = _state(weighted, *settings[0]), _state(weighted, *settings[1])
    assert abs(plain - (a.loglik(a.factor) - b.loglik(b.factor))) > 0.1  # the weights matter


def test_survey_weights_are_refused_for_the_probit_model():
    with pytest.raises(ConfigError, match="probit"):
        BkmrData(
            np.array([0.0, 1.0]),
            np.zeros((2, 0)),
            np.zeros((2, 1)),
            probit=True,
            weights=np.ones(2),
        )
