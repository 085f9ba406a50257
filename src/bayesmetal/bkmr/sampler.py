"""Fast BKMR sampler: collapsed Metropolis-within-Gibbs with joint inclusion/r moves.

h is integrated out: y - X beta ~ N(0, sigma2 V), V = I + lambda K_r (+ lambda_ri Z Z'), and
sigma2 is integrated out of every Metropolis ratio. Per iteration: beta from its Gaussian
conditional; reversible-jump moves that switch exposures (or groups) in, proposing r_m from a
log-normal learned in warm-up, or out (r_m = 0); three adaptive-Metropolis moves of
(log lambda [, log lambda_ri], log r of the included exposures), whose covariance is learned in
warm-up; then sigma2 and pi from their exact conditionals. Probit models first draw h and the
latent y*. Adaptation stops after warm-up, so kept draws come from a fixed, valid chain. R's
bkmr likewise proposes an inclusion flip together with a new r_m; without that, indicators stop
flipping.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayesmetal.bkmr import priors as bkmr_priors
from bayesmetal.bkmr.kernel import exact_factor, kernel, knots_factor


@dataclass(frozen=True)
class BkmrData:
    """What the sampler needs: outcome, covariates (no intercept: h carries the level),
    standardised exposures, knots and the selection/probit/random-intercept structure."""

    y: np.ndarray
    X: np.ndarray
    z: np.ndarray
    knots: np.ndarray | None = None
    selection: bool = True
    probit: bool = False  # binary y: latent y* ~ N(h + X beta, 1), y = 1 if y* > 0
    groups: np.ndarray | None = None  # hierarchical selection: group index of each exposure
    random_intercept: np.ndarray | None = None  # group index of each person (random intercept)

    @property
    def onehot(self) -> np.ndarray | None:
        """Z of the random intercept (n x groups)."""
        if self.random_intercept is None:
            return None
        return (self.random_intercept[:, None] == np.unique(self.random_intercept)[None]) * 1.0


@dataclass
class Chain:
    """Draws of one chain and its acceptance statistics."""

    draws: dict[str, np.ndarray]
    stats: dict[str, float] = field(default_factory=dict)
    resume: dict[str, Any] = field(default_factory=dict)  # final state + frozen proposals


class _State:
    """The current values of one chain and the factorisation of V that goes with them."""

    def __init__(self, data: BkmrData, rng: np.random.Generator, priors: dict[str, Any]) -> None:
        self.data = data
        n, m = data.z.shape
        self.m = m
        # probit: y* starts at +-0.5 by outcome; sigma2 is fixed at 1 (identifiability)
        self.ystar = np.where(data.y > 0, 0.5, -0.5) if data.probit else None
        self.beta = (
            np.linalg.lstsq(data.X, self.y - self.y.mean(), rcond=None)[0]
            if data.X.shape[1]
            else np.zeros(0)
        )
        self.sigma_sq = 1.0 if data.probit else float(np.var(self.y - data.X @ self.beta))
        self.lam = 1.0
        self.delta = np.ones(m, dtype=int)
        if data.groups is not None:  # one exposure per group to start with
            self.delta = np.zeros(m, dtype=int)
            for g in np.unique(data.groups):
                self.delta[np.flatnonzero(data.groups == g)[0]] = 1
        self.rho = np.full(m, 0.1) * np.exp(rng.normal(0, 0.3, m))
        self.pi = 0.5
        self.sigma_prior = None if data.probit else bkmr_priors.params(priors["sigma_sq"])
        self.onehot = data.onehot
        self.same_group = None if self.onehot is None else self.onehot @ self.onehot.T
        self.lam_ri = 1.0 if self.onehot is not None else 0.0
        self.factor = self.make_factor(self.r, self.lam)

    @property
    def r(self) -> np.ndarray:
        return self.delta * self.rho

    def snapshot(self) -> dict[str, Any]:
        """The chain's current values, JSON-ready, to continue it later."""
        return {
            "beta": self.beta.tolist(),
            "sigma_sq": self.sigma_sq,
            "lam": self.lam,
            "lam_ri": self.lam_ri,
            "delta": self.delta.tolist(),
            "rho": self.rho.tolist(),
            "pi": self.pi,
            "ystar": None if self.ystar is None else self.ystar.tolist(),
        }

    def restore(self, saved: dict[str, Any]) -> None:
        """Continue from a snapshot."""
        self.beta = np.array(saved["beta"], dtype=float)
        self.sigma_sq, self.lam, self.pi = saved["sigma_sq"], saved["lam"], saved["pi"]
        self.lam_ri = saved.get("lam_ri", 0.0)
        self.delta = np.array(saved["delta"], dtype=int)
        self.rho = np.array(saved["rho"], dtype=float)
        if saved["ystar"] is not None:
            self.ystar = np.array(saved["ystar"], dtype=float)
        self.factor = self.make_factor(self.r, self.lam)

    @property
    def y(self) -> np.ndarray:
        """The Gaussian response: y itself, or the latent y* of the probit model."""
        return self.ystar if self.ystar is not None else self.data.y

    def make_factor(self, r: np.ndarray, lam: float, lam_ri: float | None = None):
        lam_ri = self.lam_ri if lam_ri is None else lam_ri
        if self.data.knots is None:
            return exact_factor(self.data.z, r, lam, self.same_group, lam_ri)
        return knots_factor(self.data.z, self.data.knots, r, lam, self.onehot, lam_ri)

    def loglik(self, factor) -> float:
        """log p(y | beta, lambda, r) with sigma2 integrated out against its
        InverseGamma(a, b) prior: -log|V|/2 - (a + n/2) log(b + e'V^-1 e / 2) + const.
        Moves on lambda, r and delta then ignore sigma2, which is drawn exactly after them."""
        resid = self.y - self.data.X @ self.beta
        quad = float(resid @ factor.solve(resid))
        if self.data.probit:  # sigma2 = 1 is fixed
            return -0.5 * factor.logdet - 0.5 * quad
        shape = self.sigma_prior["alpha"] + len(resid) / 2
        return -0.5 * factor.logdet - shape * np.log(self.sigma_prior["beta"] + quad / 2)


BLOCK_MOVES = 3  # lambda/r block moves per iteration: their ESS is what limits the run


def FLIPS_PER_ITERATION(m: int) -> int:  # noqa: N802 (a tuning constant of the sampler)
    """In/out proposals per iteration (random exposures): most are rejected once PIPs settle
    near 0 or 1, so a third of the exposures each time spends factorisations better."""
    return max(1, -(-m // 3))


def _adapt(scale: float, rate: float, target: float, step: int) -> float:
    return float(scale * np.exp((rate - target) / np.sqrt(step + 1)))


class _BlockProposal:
    """Proposal covariance of (log lambda [, log lambda_ri], log r_active), learned from
    warm-up draws.

    After warm-up it is a fixed function of the active set, so the chain stays valid.
    """

    def __init__(self, m: int, n_lead: int = 1) -> None:
        self.history: np.ndarray | None = None
        self.cache: dict[tuple[int, ...], np.ndarray] = {}
        self.m, self.n_lead = m, n_lead

    def learn(self, history: np.ndarray) -> None:
        self.history, self.cache = history, {}

    def chol(self, active: np.ndarray) -> np.ndarray:
        key = tuple(int(j) for j in active)
        if key not in self.cache:
            cols = [*range(self.n_lead), *(self.n_lead + j for j in key)]
            cov = 0.25 * np.eye(len(cols))
            if self.history is not None:
                rows = self.history[:, cols]
                rows = rows[~np.isnan(rows).any(axis=1)]
                if len(rows) > 3 * len(cols) + 10:
                    cov = np.cov(rows, rowvar=False).reshape(len(cols), len(cols))
                    cov += 1e-4 * np.eye(len(cols))
            self.cache[key] = np.linalg.cholesky(cov)
        return self.cache[key]


def _draw_beta(state: _State, data: BkmrData, prior: dict[str, float], rng) -> np.ndarray:
    """beta | rest ~ Normal: precision X'V^-1X / sigma2 + I / s0^2."""
    p = data.X.shape[1]
    vinv_x = state.factor.solve(data.X)
    precision = data.X.T @ vinv_x / state.sigma_sq + np.eye(p) / prior["sigma"] ** 2
    rhs = vinv_x.T @ state.y / state.sigma_sq + prior["mu"] / prior["sigma"] ** 2
    chol = np.linalg.cholesky(precision)
    mean = np.linalg.solve(precision, rhs)
    return mean + np.linalg.solve(chol.T, rng.standard_normal(p))


def _log_q(log_r: float, mu: float, sd: float) -> float:
    """Log-density of r under the log-normal birth proposal."""
    return -0.5 * ((log_r - mu) / sd) ** 2 - np.log(sd) - log_r


def _component_moves(state: _State, rng, m: int, q_mu, q_sd, logp_r):
    """Component-wise: for a random third of the exposures, propose switching in or out.

    Yields (delta, rho, log prior-and-proposal ratio) for each proposal.
    """
    for j in rng.permutation(m)[: FLIPS_PER_ITERATION(m)]:
        delta, rho = state.delta.copy(), state.rho.copy()
        odds = np.log(state.pi) - np.log1p(-state.pi)
        if state.delta[j] == 0:
            delta[j] = 1
            rho[j] = np.exp(rng.normal(q_mu[j], q_sd[j]))
            yield delta, rho, odds + logp_r(rho[j]) - _log_q(np.log(rho[j]), q_mu[j], q_sd[j])
        else:
            delta[j] = 0
            yield delta, rho, -odds - logp_r(rho[j]) + _log_q(np.log(rho[j]), q_mu[j], q_sd[j])


def _group_moves(state: _State, rng, groups: np.ndarray, q_mu, q_sd, logp_r):
    """Hierarchical: per group, switch it in (a random member) or out, or swap its member.

    Within an included group exactly one exposure is in (uniform prior over members), so a
    group's prior odds are pi / (1 - pi) and the 1/|group| terms of prior and proposal cancel.
    """
    odds = np.log(state.pi) - np.log1p(-state.pi)
    for g in rng.permutation(np.unique(groups)):
        members = np.flatnonzero(groups == g)
        current = members[state.delta[members] == 1]
        delta, rho = state.delta.copy(), state.rho.copy()
        if current.size == 0:  # group in, with a random member
            j = int(rng.choice(members))
            delta[j] = 1
            rho[j] = np.exp(rng.normal(q_mu[j], q_sd[j]))
            yield delta, rho, odds + logp_r(rho[j]) - _log_q(np.log(rho[j]), q_mu[j], q_sd[j])
        elif members.size > 1 and rng.random() < 0.5:  # swap the member
            old = int(current[0])
            j = int(rng.choice(members[members != old]))
            delta[old], delta[j] = 0, 1
            rho[j] = np.exp(rng.normal(q_mu[j], q_sd[j]))
            yield (
                delta,
                rho,
                (
                    logp_r(rho[j])
                    - _log_q(np.log(rho[j]), q_mu[j], q_sd[j])
                    - logp_r(rho[old])
                    + _log_q(np.log(rho[old]), q_mu[old], q_sd[old])
                ),
            )
        else:  # group out
            old = int(current[0])
            delta[old] = 0
            yield (
                delta,
                rho,
                (-odds - logp_r(rho[old]) + _log_q(np.log(rho[old]), q_mu[old], q_sd[old])),
            )


def _draw_latent(state: _State, data: BkmrData, rng: np.random.Generator) -> None:
    """Probit: h | y* by Matheron's rule, then y* | h, beta from truncated normals."""
    from scipy.stats import truncnorm

    n = len(data.y)
    lam = state.lam
    if data.knots is None:
        k = kernel(data.z, data.z, state.r)
        k[np.diag_indices_from(k)] += 1e-8
        h0 = np.sqrt(lam) * np.linalg.cholesky(k) @ rng.standard_normal(n)
    else:
        k_kk = kernel(data.knots, data.knots, state.r)
        k_kk[np.diag_indices_from(k_kk)] += 1e-6
        u = np.linalg.solve(np.linalg.cholesky(k_kk), kernel(data.knots, data.z, state.r)).T
        h0 = np.sqrt(lam) * u @ rng.standard_normal(u.shape[1])
    if state.onehot is not None:  # f = h + u: add a prior draw of the random intercepts
        h0 = h0 + np.sqrt(state.lam_ri) * state.onehot @ rng.standard_normal(state.onehot.shape[1])
    mean = data.X @ state.beta
    gap = state.ystar - mean - h0 - rng.standard_normal(n)
    h = h0 + gap - state.factor.solve(gap)  # lambda K V^-1 x = x - V^-1 x
    centre = mean + h
    lower = np.where(data.y > 0, -centre, -np.inf)
    upper = np.where(data.y > 0, np.inf, -centre)
    state.ystar = centre + truncnorm.rvs(lower, upper, random_state=rng)


def run_chain(
    data: BkmrData,
    priors: dict[str, Any],
    tune: int,
    draws: int,
    seed: int,
    chain: int,
    resume: dict[str, Any] | None = None,
) -> Chain:
    """One chain: `tune` adapting iterations, then `draws` kept ones. With `resume` (a
    previous chain's `Chain.resume`) it continues that chain: same state, same frozen
    proposals, no warm-up."""
    rng = np.random.default_rng([seed, chain] if resume is None else [seed, chain, resume["step"]])
    state = _State(data, rng, priors)
    logp_r = bkmr_priors.logp_function(priors["r"], "r")
    logp_lam = bkmr_priors.logp_function(priors["lambda"], "lambda")
    b_prior = bkmr_priors.params(priors["beta"])
    s_prior = None if data.probit else bkmr_priors.params(priors["sigma_sq"])
    p_prior = bkmr_priors.params(priors["pi"])
    n, p = data.X.shape
    m = state.m
    block_scale = 2.38
    q_mu, q_sd = np.full(m, np.log(0.1)), np.full(m, 1.5)  # birth proposals for log r_m
    history: list[np.ndarray] = []  # warm-up [log lambda, log r_1..M] (NaN where excluded)
    has_ri = data.random_intercept is not None
    n_lead = 2 if has_ri else 1  # block columns before the r's: log lambda [, log lambda_ri]
    logp_ri = bkmr_priors.logp_function(priors["lambda_ri"], "lambda_ri") if has_ri else None
    proposal = _BlockProposal(m, n_lead)

    def log_prior(lam: float, lam_ri: float, rho: np.ndarray, active, at: np.ndarray) -> float:
        """Block prior on the log scale (the sum of `at` is the log-Jacobian)."""
        total = logp_lam(lam) + sum(logp_r(rho[j]) for j in active) + at.sum()
        return total + (logp_ri(lam_ri) if has_ri else 0.0)

    if resume is not None:
        tune = 0
        state.restore(resume["state"])
        block_scale = resume["block_scale"]
        q_mu, q_sd = np.array(resume["q_mu"]), np.array(resume["q_sd"])
        if resume["history"]:
            proposal.learn(np.array(resume["history"], dtype=float))
    out = {
        "beta": np.empty((draws, p)),
        "sigma_sq": np.empty(draws),
        "lambda": np.empty(draws),
        "r": np.empty((draws, m)),
        "delta": np.empty((draws, m), dtype=np.int8),
        "pi": np.empty(draws),
    }
    acc = {"block": [0, 0], "flip": [0, 0]}
    loglik = state.loglik(state.factor)
    if data.probit:
        out["ystar"] = np.empty((draws, n), dtype=np.float32)
    if data.random_intercept is not None:
        out["lambda_ri"] = np.empty(draws)
    for it in range(tune + draws):
        warm = it < tune
        if data.probit:
            _draw_latent(state, data, rng)
        if p:
            state.beta = _draw_beta(state, data, b_prior, rng)
        loglik = state.loglik(state.factor)
        # inclusion: reversible-jump moves, r drawn from a log-normal when an exposure enters
        if data.selection:
            moves = (
                _component_moves(state, rng, m, q_mu, q_sd, logp_r)
                if data.groups is None
                else _group_moves(state, rng, data.groups, q_mu, q_sd, logp_r)
            )
            for delta, rho, prior_term in moves:
                new_factor = state.make_factor(delta * rho, state.lam)
                new_ll = state.loglik(new_factor)
                accepted = np.log(rng.random()) < new_ll - loglik + prior_term
                if accepted:
                    state.delta, state.rho, state.factor, loglik = delta, rho, new_factor, new_ll
                acc["flip"][0] += accepted
                acc["flip"][1] += 1
        # (log lambda[, log lambda_ri], log r of included exposures): adaptive-Metropolis block
        for _ in range(BLOCK_MOVES):
            active = np.flatnonzero(state.delta)
            lead = [np.log(state.lam)] + ([np.log(state.lam_ri)] if has_ri else [])
            current = np.concatenate([lead, np.log(state.rho[active])])
            step = proposal.chol(active) @ rng.standard_normal(current.size)
            moved = current + block_scale / np.sqrt(current.size) * step
            lam_new = float(np.exp(moved[0]))
            lam_ri_new = float(np.exp(moved[1])) if has_ri else 0.0
            rho = state.rho.copy()
            rho[active] = np.exp(moved[n_lead:])
            prior_new = log_prior(lam_new, lam_ri_new, rho, active, moved)
            if not np.isfinite(prior_new):  # outside the prior's support: reject at no cost
                accepted = False
            else:
                new_factor = state.make_factor(state.delta * rho, lam_new, lam_ri_new)
                new_ll = state.loglik(new_factor)
                prior_old = log_prior(state.lam, state.lam_ri, state.rho, active, current)
                accepted = np.log(rng.random()) < new_ll - loglik + prior_new - prior_old
                if accepted:
                    state.lam, state.lam_ri, state.rho = lam_new, lam_ri_new, rho
                    state.factor, loglik = new_factor, new_ll
            acc["block"][0] += accepted
            acc["block"][1] += 1
            if warm:
                block_scale = _adapt(block_scale, float(accepted), 0.25, it)
        # sigma2 | rest: InverseGamma(a + n/2, b + e' V^-1 e / 2); fixed at 1 for probit
        if not data.probit:
            resid = data.y - data.X @ state.beta
            quad = float(resid @ state.factor.solve(resid))
            state.sigma_sq = (s_prior["beta"] + quad / 2) / rng.gamma(s_prior["alpha"] + n / 2)
        # pi | delta: Beta(a + units in, b + units out); units are exposures or groups
        if data.selection:
            units = m if data.groups is None else len(np.unique(data.groups))
            k = int(state.delta.sum())
            state.pi = rng.beta(p_prior["alpha"] + k, p_prior["beta"] + units - k)
        if warm:
            row = np.full(m + n_lead, np.nan)
            row[0] = np.log(state.lam)
            if has_ri:
                row[1] = np.log(state.lam_ri)
            row[n_lead + np.flatnonzero(state.delta)] = np.log(state.rho[state.delta == 1])
            history.append(row)
            if it >= 100 and it % 50 == 0:  # learn covariances and birth proposals
                proposal.learn(np.array(history[len(history) // 2 :]))
                for j in range(m):
                    seen = np.array(history[len(history) // 2 :])[:, n_lead + j]
                    seen = seen[~np.isnan(seen)]
                    if len(seen) > 20:
                        q_mu[j], q_sd[j] = seen.mean(), max(seen.std() * 1.5, 0.3)
        else:
            d = it - tune
            out["beta"][d], out["sigma_sq"][d] = state.beta, state.sigma_sq
            out["lambda"][d], out["r"][d] = state.lam, state.r
            if has_ri:
                out["lambda_ri"][d] = state.lam_ri
            out["delta"][d], out["pi"][d] = state.delta, state.pi
            if data.probit:
                out["ystar"][d] = state.ystar
    stats = {f"accept_{k}": (a / t if t else float("nan")) for k, (a, t) in acc.items()}
    learned = proposal.history if proposal.history is not None else np.zeros((0, m + n_lead))
    resume_info = {
        "state": state.snapshot(),
        "block_scale": block_scale,
        "q_mu": q_mu.tolist(),
        "q_sd": q_sd.tolist(),
        "history": np.where(np.isnan(learned), None, learned).tolist(),
        "step": (resume["step"] + 1) if resume else 1,
    }
    return Chain(out, stats, resume_info)


def _run_chain_single_thread(args: tuple) -> Chain:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return run_chain(*args)


def sample_chains(
    data: BkmrData,
    priors: dict[str, Any],
    tune: int,
    draws: int,
    chains: int,
    seed: int,
    cores: int | None = None,
    resume: list[dict[str, Any]] | None = None,
) -> tuple[list[Chain], float]:
    """Run chains in parallel processes (one BLAS thread each); returns chains and wall time.
    `resume` (one entry per chain) continues earlier chains instead of starting new ones."""
    bkmr_priors.check_conjugate(priors, probit=data.probit)
    start = time.perf_counter()
    jobs = [
        (data, priors, tune, draws, seed, c, resume[c] if resume else None) for c in range(chains)
    ]
    workers = min(chains, cores or os.cpu_count() or 1)
    if workers == 1:
        results = [_run_chain_single_thread(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_run_chain_single_thread, jobs))
    return results, time.perf_counter() - start
