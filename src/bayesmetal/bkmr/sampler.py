"""Fast BKMR sampler: collapsed Metropolis-within-Gibbs with joint inclusion/r moves.

h is integrated out: y - X beta ~ N(0, sigma2 (I + lambda K_r)). Per iteration: beta and
sigma2 from their conjugate full conditionals, pi from its Beta conditional, lambda by a
log-scale random walk, and for each exposure a reversible-jump move that switches it in
(proposing r_m from an independent log-normal) or out (r_m = 0), followed by a joint
log-scale random walk on the included r's. Proposal scales adapt during warm-up only, so the
kept draws come from a fixed, valid Markov chain. R bkmr proposes a flip jointly with a new
r_m in the same spirit; without it indicators stop flipping.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayesmetal.bkmr import priors as bkmr_priors
from bayesmetal.bkmr.kernel import collapsed_loglik, exact_factor, knots_factor


@dataclass(frozen=True)
class BkmrData:
    """What the sampler needs: outcome, covariates (with intercept), exposures, knots."""

    y: np.ndarray
    X: np.ndarray
    z: np.ndarray
    knots: np.ndarray | None = None
    selection: bool = True


@dataclass
class Chain:
    """Draws of one chain and its acceptance statistics."""

    draws: dict[str, np.ndarray]
    stats: dict[str, float] = field(default_factory=dict)


class _State:
    def __init__(self, data: BkmrData, rng: np.random.Generator, priors: dict[str, Any]) -> None:
        self.data = data
        n, m = data.z.shape
        self.m = m
        self.beta = (
            np.linalg.lstsq(data.X, data.y - data.y.mean(), rcond=None)[0]
            if data.X.shape[1]
            else np.zeros(0)
        )
        self.sigma_sq = float(np.var(data.y - data.X @ self.beta))
        self.lam = 1.0
        self.delta = np.ones(m, dtype=int)
        self.rho = np.full(m, 0.1) * np.exp(rng.normal(0, 0.3, m))
        self.pi = 0.5
        self.factor = self.make_factor(self.r, self.lam)

    @property
    def r(self) -> np.ndarray:
        return self.delta * self.rho

    def make_factor(self, r: np.ndarray, lam: float):
        if self.data.knots is None:
            return exact_factor(self.data.z, r, lam)
        return knots_factor(self.data.z, self.data.knots, r, lam)

    def loglik(self, factor) -> float:
        return collapsed_loglik(self.data.y - self.data.X @ self.beta, factor, self.sigma_sq)


def _adapt(scale: float, rate: float, target: float, step: int) -> float:
    return float(scale * np.exp((rate - target) / np.sqrt(step + 1)))


def _draw_beta(state: _State, data: BkmrData, prior: dict[str, float], rng) -> np.ndarray:
    """beta | rest ~ Normal: precision X'V^-1X / sigma2 + I / s0^2."""
    p = data.X.shape[1]
    vinv_x = state.factor.solve(data.X)
    precision = data.X.T @ vinv_x / state.sigma_sq + np.eye(p) / prior["sigma"] ** 2
    rhs = vinv_x.T @ data.y / state.sigma_sq + prior["mu"] / prior["sigma"] ** 2
    chol = np.linalg.cholesky(precision)
    mean = np.linalg.solve(precision, rhs)
    return mean + np.linalg.solve(chol.T, rng.standard_normal(p))


def run_chain(
    data: BkmrData, priors: dict[str, Any], tune: int, draws: int, seed: int, chain: int
) -> Chain:
    """One chain: `tune` adapting iterations, then `draws` kept ones."""
    rng = np.random.default_rng([seed, chain])
    state = _State(data, rng, priors)
    logp_r = bkmr_priors.logp_function(priors["r"], "r")
    logp_lam = bkmr_priors.logp_function(priors["lambda"], "lambda")
    b_prior = bkmr_priors.params(priors["beta"])
    s_prior = bkmr_priors.params(priors["sigma_sq"])
    p_prior = bkmr_priors.params(priors["pi"])
    n, p = data.X.shape
    m = state.m
    lam_step, rho_step = 0.5, 0.5
    q_mu, q_sd = np.full(m, np.log(0.1)), np.full(m, 1.5)  # birth proposals for log r_m
    log_rho_hist: list[list[float]] = [[] for _ in range(m)]
    out = {
        "beta": np.empty((draws, p)),
        "sigma_sq": np.empty(draws),
        "lambda": np.empty(draws),
        "r": np.empty((draws, m)),
        "delta": np.empty((draws, m), dtype=np.int8),
        "pi": np.empty(draws),
    }
    acc = {"lambda": [0, 0], "flip": [0, 0], "r": [0, 0]}
    loglik = state.loglik(state.factor)
    for it in range(tune + draws):
        warm = it < tune
        # beta | rest: Normal(mu0, s0) prior, likelihood N(X beta, sigma2 V)
        if p:
            state.beta = _draw_beta(state, data, b_prior, rng)
        # sigma2 | rest: InverseGamma(a + n/2, b + e' V^-1 e / 2)
        resid = data.y - data.X @ state.beta
        quad = float(resid @ state.factor.solve(resid))
        state.sigma_sq = (s_prior["beta"] + quad / 2) / rng.gamma(s_prior["alpha"] + n / 2)
        loglik = state.loglik(state.factor)
        # lambda: random walk on log scale (Jacobian: + log lambda)
        proposal = state.lam * np.exp(lam_step * rng.standard_normal())
        new_factor = state.make_factor(state.r, proposal)
        new_ll = state.loglik(new_factor)
        log_ratio = (
            new_ll
            + logp_lam(proposal)
            + np.log(proposal)
            - loglik
            - logp_lam(state.lam)
            - np.log(state.lam)
        )
        accepted = np.log(rng.random()) < log_ratio
        if accepted:
            state.lam, state.factor, loglik = proposal, new_factor, new_ll
        acc["lambda"][0] += accepted
        acc["lambda"][1] += 1
        if warm:
            lam_step = _adapt(lam_step, float(accepted), 0.44, it)
        # inclusion: reversible jump in/out per exposure, r_m drawn from a log-normal when in
        if data.selection:
            for j in rng.permutation(m):
                delta = state.delta.copy()
                rho = state.rho.copy()
                log_pi, log_1m = np.log(state.pi), np.log1p(-state.pi)
                if state.delta[j] == 0:
                    log_r = rng.normal(q_mu[j], q_sd[j])
                    rho[j], delta[j] = np.exp(log_r), 1
                    log_q = -0.5 * ((log_r - q_mu[j]) / q_sd[j]) ** 2 - np.log(q_sd[j]) - log_r
                    prior_term = log_pi - log_1m + logp_r(rho[j]) - log_q
                else:
                    log_r = np.log(rho[j])
                    delta[j] = 0
                    log_q = -0.5 * ((log_r - q_mu[j]) / q_sd[j]) ** 2 - np.log(q_sd[j]) - log_r
                    prior_term = log_1m - log_pi - logp_r(rho[j]) + log_q
                new_factor = state.make_factor(delta * rho, state.lam)
                new_ll = state.loglik(new_factor)
                accepted = np.log(rng.random()) < new_ll - loglik + prior_term
                if accepted:
                    state.delta, state.rho, state.factor, loglik = delta, rho, new_factor, new_ll
                acc["flip"][0] += accepted
                acc["flip"][1] += 1
        # included r's: joint random walk on the log scale
        active = np.flatnonzero(state.delta)
        if active.size:
            rho = state.rho.copy()
            rho[active] *= np.exp(
                rho_step / np.sqrt(active.size) * rng.standard_normal(active.size)
            )
            new_factor = state.make_factor(state.delta * rho, state.lam)
            new_ll = state.loglik(new_factor)
            prior_diff = sum(
                logp_r(rho[j]) + np.log(rho[j]) - logp_r(state.rho[j]) - np.log(state.rho[j])
                for j in active
            )
            accepted = np.log(rng.random()) < new_ll - loglik + prior_diff
            if accepted:
                state.rho, state.factor, loglik = rho, new_factor, new_ll
            acc["r"][0] += accepted
            acc["r"][1] += 1
            if warm:
                rho_step = _adapt(rho_step, float(accepted), 0.3, it)
        # excluded r's are not in the model: keep them at a prior-like value for the next birth
        # pi | delta: Beta(a + sum delta, b + M - sum delta)
        if data.selection:
            k = int(state.delta.sum())
            state.pi = rng.beta(p_prior["alpha"] + k, p_prior["beta"] + m - k)
        if warm:
            for j in active:
                log_rho_hist[j].append(np.log(state.rho[j]))
            if it >= tune // 2:  # birth proposals follow the included r's seen so far
                for j in range(m):
                    if len(log_rho_hist[j]) > 20:
                        q_mu[j] = np.mean(log_rho_hist[j][-500:])
                        q_sd[j] = max(np.std(log_rho_hist[j][-500:]) * 1.5, 0.3)
        else:
            d = it - tune
            out["beta"][d], out["sigma_sq"][d], out["lambda"][d] = (
                state.beta,
                state.sigma_sq,
                state.lam,
            )
            out["r"][d], out["delta"][d], out["pi"][d] = state.r, state.delta, state.pi
    stats = {f"accept_{k}": (a / t if t else float("nan")) for k, (a, t) in acc.items()}
    return Chain(out, stats)


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
) -> tuple[list[Chain], float]:
    """Run chains in parallel processes (one BLAS thread each); returns chains and wall time."""
    bkmr_priors.check_conjugate(priors)
    start = time.perf_counter()
    jobs = [(data, priors, tune, draws, seed, c) for c in range(chains)]
    workers = min(chains, cores or os.cpu_count() or 1)
    if workers == 1:
        results = [_run_chain_single_thread(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_run_chain_single_thread, jobs))
    return results, time.perf_counter() - start
