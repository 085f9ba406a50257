"""Fast BKMR sampler: collapsed Metropolis-within-Gibbs with reversible-jump selection moves.

h is integrated out: y - X beta ~ N(0, sigma2 V), V = I + lambda K_r (+ lambda_ri Z Z'), and
sigma2 is integrated out of every Metropolis ratio (a partially collapsed Gibbs sampler: sigma2
is drawn from its full conditional right after the moves that ignore it, before anything
conditions on it again). Per iteration: [probit: h by Matheron's rule, then the latent y*];
beta from its Gaussian conditional; reversible-jump moves that switch exposures (or groups) in,
drawing r_m from a birth proposal, or out (r_m = 0); three adaptive-Metropolis moves of
(log lambda [, log lambda_ri], log r of the included exposures); sigma2 and pi from their
exact conditionals. Adaptation stops after warm-up, so kept draws come from a fixed, valid
chain. As in R's bkmr (`rdelta.comp.update`, `rdelta.group.update`) an inclusion flip carries
a new r_m; each ratio's terms are listed where the move is proposed.

Numerics never end a chain: a proposal whose matrix cannot be factorised, or whose log-scale
parameters leave [-LOG_BOUND, LOG_BOUND], is a rejected proposal, counted in the chain's
statistics. The bound truncates the priors of lambda, lambda_ri and r to [e^-15, e^15]; the
default priors put less than 1e-7 of their mass outside.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp

from bayesmetal.bkmr import priors as bkmr_priors
from bayesmetal.bkmr.kernel import (
    Factor,
    exact_factor,
    gaussian_loglik,
    kernel,
    knots_factor,
    low_rank_basis,
    robust_cholesky,
    sigma_marginal_loglik,
)
from bayesmetal.errors import ConfigError

LOG_BOUND = 15.0  # |log lambda|, |log lambda_ri|, |log r_m| beyond this: rejected
BLOCK_MOVES = 3  # lambda/r block moves per iteration: their ESS is what limits the run
SCALE_RANGE = (0.05, 10.0)  # the adapted block step (x 2.38 / sqrt(dim)) stays in here
WIDE_WEIGHT = 0.2  # share of the birth proposal that is wide and centred on the prior
WIDE_SD = 2.0  # sd (log scale) of that wide component

# per-draw record of the selection move that touched an exposure (sample_stats "flip")
NO_MOVE, IN_REJECTED, IN_ACCEPTED, OUT_REJECTED, OUT_ACCEPTED = range(5)


@dataclass(frozen=True)
class BkmrData:
    """What the sampler needs: outcome, covariates (no intercept: h carries the level),
    standardised exposures, knots and the selection/probit/random-intercept structure.

    `likelihood=False` switches the likelihood off, so a correct sampler returns the prior:
    the prior-recovery check of the moves. `weights` (survey weights normalised to sum to n)
    make the likelihood the weighted pseudo-likelihood: person i's noise variance is
    sigma2 / w_i, V = diag(1 / w) + lambda K (the Gaussian model only)."""

    y: np.ndarray
    X: np.ndarray
    z: np.ndarray
    knots: np.ndarray | None = None
    selection: bool = True
    probit: bool = False  # binary y: latent y* ~ N(h + X beta, 1), y = 1 if y* > 0
    groups: np.ndarray | None = None  # hierarchical selection: group index of each exposure
    random_intercept: np.ndarray | None = None  # group index of each person (random intercept)
    likelihood: bool = True
    weights: np.ndarray | None = None  # survey weights: the weighted pseudo-likelihood

    def __post_init__(self) -> None:
        if self.weights is not None and self.probit:
            raise ConfigError(
                "survey weights: the probit BKMR's latent-variable Gibbs step has no weighted "
                "form (a weighted probit likelihood is not a latent Gaussian)"
            )

    @property
    def count(self) -> float:
        """The likelihood's power of 1 / sigma, over 2: n, or the sum of the weights (n when
        they are normalised)."""
        return float(len(self.y) if self.weights is None else self.weights.sum())

    @property
    def noise(self) -> float | np.ndarray:
        """The noise variance over sigma2 of each person: 1, or 1 / w_i with survey weights."""
        return 1.0 if self.weights is None else 1.0 / self.weights

    @property
    def onehot(self) -> np.ndarray | None:
        """Z of the random intercept (n x groups)."""
        if self.random_intercept is None:
            return None
        return (self.random_intercept[:, None] == np.unique(self.random_intercept)[None]) * 1.0


class Covariance:
    """V = noise + lambda K_r (+ lambda_ri Z Z') at the data's points (noise: I, or
    diag(1 / w) with survey weights), factorised on call: exact, or the predictive process on
    the data's knots. Z and Z Z' are built once."""

    def __init__(self, data: BkmrData) -> None:
        self.data = data
        self.onehot = data.onehot
        self.same_group = None if self.onehot is None else self.onehot @ self.onehot.T

    def factor(self, r: np.ndarray, lam: float, lam_ri: float = 0.0) -> Factor:
        data = self.data
        if data.knots is None:
            return exact_factor(data.z, r, lam, self.same_group, lam_ri, data.noise)
        return knots_factor(data.z, data.knots, r, lam, self.onehot, lam_ri, data.noise)


@dataclass
class Chain:
    """Draws of one chain, its per-draw statistics and summary statistics."""

    draws: dict[str, np.ndarray]
    stats: dict[str, float] = field(default_factory=dict)
    resume: dict[str, Any] = field(default_factory=dict)  # final state + frozen proposals
    sample_stats: dict[str, np.ndarray] = field(default_factory=dict)  # per draw


@dataclass(frozen=True)
class PriorFunctions:
    """Compiled log-densities and quantile functions of the priors the moves need."""

    logp_r: Callable[[float], float]
    logp_lambda: Callable[[float], float]
    logp_lambda_ri: Callable[[float], float] | None
    quantile_r: Callable[[float], float]
    quantile_lambda: Callable[[float], float]

    @classmethod
    def compile(cls, priors: dict[str, Any], random_intercept: bool) -> PriorFunctions:
        return cls(
            logp_r=bkmr_priors.logp_function(priors["r"], "r"),
            logp_lambda=bkmr_priors.logp_function(priors["lambda"], "lambda"),
            logp_lambda_ri=(
                bkmr_priors.logp_function(priors["lambda_ri"], "lambda_ri")
                if random_intercept
                else None
            ),
            quantile_r=bkmr_priors.quantile_function(priors["r"], "r"),
            quantile_lambda=bkmr_priors.quantile_function(priors["lambda"], "lambda"),
        )


def starting_selection(
    m: int, groups: np.ndarray | None, chain: int, rng: np.random.Generator
) -> np.ndarray:
    """Dispersed starts: chain c includes exposure (or group) j when c + j is even, so with
    two or more chains every indicator starts in both states; a group starts with a random
    member."""
    if groups is None:
        return ((np.arange(m) + chain) % 2 == 0).astype(int)
    delta = np.zeros(m, dtype=int)
    for g in np.unique(groups):
        if (g + chain) % 2 == 0:
            delta[rng.choice(np.flatnonzero(groups == g))] = 1
    return delta


def _prior_quantile(u: float, quantile: Callable[[float], float]) -> float:
    """A starting value from the prior's central 80%, inside the sampler's bounds."""
    value = quantile(0.1 + 0.8 * u)
    return float(np.exp(np.clip(np.log(value), -LOG_BOUND + 1, LOG_BOUND - 1)))


class ChainState:
    """The current values of one chain and the factorisation of V that goes with them."""

    def __init__(self, data: BkmrData, priors: dict[str, Any]) -> None:
        self.data = data
        self.m = data.z.shape[1]
        self.sigma_prior = (
            None if data.probit else bkmr_priors.params(priors["sigma_sq"], "sigma_sq")
        )
        self.covariance = Covariance(data)
        self.onehot = self.covariance.onehot
        # probit: y* starts at +-0.5 by outcome; sigma2 is fixed at 1 (identifiability)
        self.ystar = np.where(data.y > 0, 0.5, -0.5) if data.probit else None
        self.beta = np.zeros(data.X.shape[1])
        self.sigma_sq, self.lam, self.pi = 1.0, 1.0, 0.5
        self.lam_ri = 1.0 if self.onehot is not None else 0.0
        self.delta, self.rho = np.ones(self.m, dtype=int), np.ones(self.m)
        self.factor: Factor | None = None

    def start(
        self, functions: PriorFunctions, chain: int, chains: int, rng: np.random.Generator
    ) -> None:
        """Dispersed starting values: beta by least squares, lambda at spread prior
        quantiles, r_m at random prior quantiles, indicators by `starting_selection`."""
        data = self.data
        if data.X.shape[1]:
            self.beta = np.linalg.lstsq(data.X, self.y - self.y.mean(), rcond=None)[0]
        if not data.probit:
            self.sigma_sq = float(np.var(self.y - data.X @ self.beta))
        self.lam = _prior_quantile((chain + 0.5) / chains, functions.quantile_lambda)
        self.rho = np.array(
            [_prior_quantile(rng.random(), functions.quantile_r) for _ in range(self.m)]
        )
        if data.selection:
            self.delta = starting_selection(self.m, data.groups, chain, rng)
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

    def make_factor(self, r: np.ndarray, lam: float, lam_ri: float | None = None) -> Factor:
        return self.covariance.factor(r, lam, self.lam_ri if lam_ri is None else lam_ri)

    def try_factor(self, r: np.ndarray, lam: float, lam_ri: float | None = None) -> Factor | None:
        """The factor of a proposal, or None when V is numerically not positive definite
        (the proposal is then rejected)."""
        try:
            return self.make_factor(r, lam, lam_ri)
        except np.linalg.LinAlgError:
            return None

    def loglik(self, factor: Factor) -> float:
        """log p(y | beta, lambda, r): sigma2 integrated out against its InverseGamma prior
        (a multivariate t), or the probit model's latent Gaussian with sigma2 = 1; 0 when the
        likelihood is switched off. Moves on lambda, r and delta then ignore sigma2, which is
        drawn exactly after them."""
        if not self.data.likelihood:
            return 0.0
        resid = self.y - self.data.X @ self.beta
        if self.data.probit:
            return gaussian_loglik(resid, factor)
        return sigma_marginal_loglik(resid, factor, **self.sigma_prior, count=self.data.count)


def FLIPS_PER_ITERATION(m: int) -> int:  # noqa: N802 (a tuning constant of the sampler)
    """In/out proposals per iteration (random exposures): most are rejected once PIPs settle
    near 0 or 1, so a third of the exposures each time spends factorisations better."""
    return max(1, -(-m // 3))


def _adapt(scale: float, rate: float, target: float, step: int) -> float:
    """Robbins-Monro step towards the target acceptance rate, kept inside SCALE_RANGE."""
    return float(np.clip(scale * np.exp((rate - target) / np.sqrt(step + 1)), *SCALE_RANGE))


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


class BirthProposal:
    """Density from which r_m is drawn when exposure m switches in: a mixture of a
    log-normal fitted to m's included warm-up draws (weight 1 - WIDE_WEIGHT) and a wide
    log-normal at the prior's median, which keeps births possible wherever the prior is.

    The density is normalised: in a birth/death ratio it stands on one side only, so a
    missing constant would bias every inclusion probability (it once did: -log(2 pi)/2).
    """

    def __init__(self, m: int, prior_median: float) -> None:
        self.centre = float(np.log(prior_median))
        self.mu = np.full(m, self.centre)
        self.sd = np.full(m, WIDE_SD)

    def draw(self, j: int, rng: np.random.Generator) -> float:
        wide = rng.random() < WIDE_WEIGHT
        mu, sd = (self.centre, WIDE_SD) if wide else (self.mu[j], self.sd[j])
        return float(np.exp(rng.normal(mu, sd)))

    def logpdf(self, j: int, r: float) -> float:
        """log q_j(r): the mixture's density of r (per unit of r, hence the -log r)."""
        log_r = np.log(r)
        parts = [
            np.log(WIDE_WEIGHT) + _log_normal_pdf(log_r, self.centre, WIDE_SD),
            np.log1p(-WIDE_WEIGHT) + _log_normal_pdf(log_r, self.mu[j], self.sd[j]),
        ]
        return float(logsumexp(parts) - log_r)

    def learn(self, j: int, log_r_draws: np.ndarray) -> None:
        self.mu[j], self.sd[j] = log_r_draws.mean(), max(log_r_draws.std() * 1.5, 0.3)

    def to_dict(self) -> dict[str, Any]:
        return {"centre": self.centre, "mu": self.mu.tolist(), "sd": self.sd.tolist()}

    def restore(self, saved: dict[str, Any]) -> None:
        self.centre = saved["centre"]
        self.mu, self.sd = np.array(saved["mu"]), np.array(saved["sd"])


def _log_normal_pdf(x: float, mu: float, sd: float) -> float:
    """log N(x | mu, sd), with its constant."""
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


@dataclass
class SelectionMove:
    """A proposed change of the included set and the terms of its log acceptance ratio
    other than the likelihood: prior, proposal density and move-choice probabilities."""

    delta: np.ndarray
    rho: np.ndarray
    log_terms: float
    entering: tuple[int, ...] = ()
    leaving: tuple[int, ...] = ()


def _component_moves(
    state: ChainState, rng: np.random.Generator, birth: BirthProposal, logp_r
) -> Iterator[SelectionMove]:
    """Component-wise: for a random third of the exposures, propose switching in or out.

    Birth (m out -> in, r_m ~ q_m): log ratio = log-likelihood ratio + log(pi / (1 - pi))
    + log p(r_m) - log q_m(r_m). Death is its reverse. Which exposures are proposed does not
    depend on the state and an exposure's move type is fixed by its state, so the
    probabilities of choosing the forward and the reverse move are equal and cancel (in R's
    rdelta.comp.update they do not always, hence its move.prob terms).
    """
    odds = np.log(state.pi) - np.log1p(-state.pi)
    for j in rng.permutation(state.m)[: FLIPS_PER_ITERATION(state.m)]:
        delta, rho = state.delta.copy(), state.rho.copy()
        if state.delta[j] == 0:
            delta[j], rho[j] = 1, birth.draw(j, rng)
            terms = odds + logp_r(rho[j]) - birth.logpdf(j, rho[j])
            yield SelectionMove(delta, rho, terms, entering=(j,))
        else:
            delta[j] = 0
            terms = -odds - logp_r(rho[j]) + birth.logpdf(j, rho[j])
            yield SelectionMove(delta, rho, terms, leaving=(j,))


def _out_move_probability(size: int) -> float:
    """P(an included group of `size` members is proposed out): it is swapped or switched
    out with probability 1/2 each when it has other members, switched out otherwise."""
    return 0.5 if size > 1 else 1.0


def _group_moves(
    state: ChainState, rng: np.random.Generator, groups: np.ndarray, birth: BirthProposal, logp_r
) -> Iterator[SelectionMove]:
    """Hierarchical: per group, switch it in (with a random member), or out, or swap the
    included member for another.

    Prior: a group is in with probability pi and then exactly one member, uniformly chosen,
    is in. Group in (member j of G chosen with probability 1/|G|, r_j ~ q_j): log ratio =
    log-likelihood ratio + log(pi / (1 - pi)) + log(1/|G|) + log p(r_j) - log(1/|G|)
    - log q_j(r_j) + log P(out move from the new state) - log P(in move) [= 0]; the
    1/|G| of prior and proposal cancel, the move-choice probability does not (R:
    rdelta.group.update's move.prob terms). Group out is the reverse. Swap j -> k
    (r_k ~ q_k): log p(r_k) - log q_k(r_k) - log p(r_j) + log q_j(r_j); choosing a swap
    and the new member has the same probability both ways.
    """
    odds = np.log(state.pi) - np.log1p(-state.pi)
    for g in rng.permutation(np.unique(groups)):
        members = np.flatnonzero(groups == g)
        out_prob = np.log(_out_move_probability(members.size))
        current = members[state.delta[members] == 1]
        delta, rho = state.delta.copy(), state.rho.copy()
        if current.size == 0:
            j = int(rng.choice(members))
            delta[j], rho[j] = 1, birth.draw(j, rng)
            terms = odds + logp_r(rho[j]) - birth.logpdf(j, rho[j]) + out_prob
            yield SelectionMove(delta, rho, terms, entering=(j,))
            continue
        old = int(current[0])
        if members.size > 1 and rng.random() < 0.5:
            j = int(rng.choice(members[members != old]))
            delta[old], delta[j], rho[j] = 0, 1, birth.draw(j, rng)
            terms = (
                logp_r(rho[j])
                - birth.logpdf(j, rho[j])
                - logp_r(rho[old])
                + birth.logpdf(old, rho[old])
            )
            yield SelectionMove(delta, rho, terms, entering=(j,), leaving=(old,))
        else:
            delta[old] = 0
            terms = -odds - logp_r(rho[old]) + birth.logpdf(old, rho[old]) - out_prob
            yield SelectionMove(delta, rho, terms, leaving=(old,))


def _draw_latent(state: ChainState, data: BkmrData, rng: np.random.Generator) -> None:
    """Probit: h | y* by Matheron's rule, then y* | h, beta from truncated normals.

    Matheron's rule is exact when the prior draw h0 has covariance V - I: with knots h0 uses
    the very basis of the factor; exactly, a Cholesky of K with a relative jitter of at most
    1e-6 (a LinAlgError beyond it makes the caller skip this update)."""
    from scipy.stats import truncnorm

    n = len(data.y)
    if data.knots is None:
        basis = robust_cholesky(kernel(data.z, data.z, state.r), max_jitter=1e-6)
    else:
        basis = low_rank_basis(data.z, data.knots, state.r)
    h0 = np.sqrt(state.lam) * basis @ rng.standard_normal(basis.shape[1])
    if state.onehot is not None:  # f = h + u: add a prior draw of the random intercepts
        h0 = h0 + np.sqrt(state.lam_ri) * state.onehot @ rng.standard_normal(state.onehot.shape[1])
    mean = data.X @ state.beta
    gap = state.ystar - mean - h0 - rng.standard_normal(n)
    h = h0 + gap - state.factor.solve(gap)  # lambda K V^-1 x = x - V^-1 x
    centre = mean + h
    lower = np.where(data.y > 0, -centre, -np.inf)
    upper = np.where(data.y > 0, np.inf, -centre)
    state.ystar = centre + truncnorm.rvs(lower, upper, random_state=rng)


def _draw_beta(state: ChainState, data: BkmrData, prior: dict[str, float], rng) -> np.ndarray:
    """beta | rest ~ Normal: precision w X'V^-1X / sigma2 + I / s0^2 (w = 0 without
    likelihood)."""
    p = data.X.shape[1]
    w = float(data.likelihood)
    vinv_x = state.factor.solve(data.X)
    precision = w * data.X.T @ vinv_x / state.sigma_sq + np.eye(p) / prior["sigma"] ** 2
    rhs = w * vinv_x.T @ state.y / state.sigma_sq + prior["mu"] / prior["sigma"] ** 2
    chol = np.linalg.cholesky(precision)
    mean = np.linalg.solve(precision, rhs)
    return mean + np.linalg.solve(chol.T, rng.standard_normal(p))


def _draw_sigma_sq(state: ChainState, data: BkmrData, prior: dict[str, float], rng) -> float:
    """sigma2 | rest ~ InverseGamma(a + w n/2, b + w e'V^-1 e / 2) (w = 0 without
    likelihood; n: `BkmrData.count`)."""
    w = float(data.likelihood)
    resid = data.y - data.X @ state.beta
    quad = state.factor.quad(resid)
    return (prior["beta"] + w * quad / 2) / rng.gamma(prior["alpha"] + w * data.count / 2)


def run_chain(
    data: BkmrData,
    priors: dict[str, Any],
    tune: int,
    draws: int,
    seed: int,
    chain: int,
    resume: dict[str, Any] | None = None,
    chains: int = 1,
    report: Callable[[int], None] | None = None,
) -> Chain:
    """One chain: `tune` adapting iterations, then `draws` kept ones. With `resume` (a
    previous chain's `Chain.resume`) it continues that chain: same state, same frozen
    proposals, no warm-up. `chains` (the run's number of chains) spreads starting values.
    `report(done)`, if given, hears the iterations done (warm-up included) at the start,
    every `report_every` of them and at the end; it draws no random numbers, so the draws do
    not depend on it."""
    rng = np.random.default_rng([seed, chain] if resume is None else [seed, chain, resume["step"]])
    has_ri = data.random_intercept is not None
    functions = PriorFunctions.compile(priors, has_ri)
    state = ChainState(data, priors)
    state.start(functions, chain, max(chains, chain + 1), rng)
    b_prior = bkmr_priors.params(priors["beta"], "beta")
    s_prior = None if data.probit else bkmr_priors.params(priors["sigma_sq"], "sigma_sq")
    p_prior = bkmr_priors.params(priors["pi"], "pi")
    n, p = data.X.shape
    m = state.m
    block_scale = 2.38
    birth = BirthProposal(m, functions.quantile_r(0.5))
    history: list[np.ndarray] = []  # warm-up [log lambda, log r_1..M] (NaN where excluded)
    n_lead = 2 if has_ri else 1  # block columns before the r's: log lambda [, log lambda_ri]
    proposal = _BlockProposal(m, n_lead)

    def log_prior(lam: float, lam_ri: float, rho: np.ndarray, active, at: np.ndarray) -> float:
        """Block prior on the log scale (the sum of `at` is the log-Jacobian)."""
        total = functions.logp_lambda(lam) + sum(functions.logp_r(rho[j]) for j in active)
        total += at.sum()
        return total + (functions.logp_lambda_ri(lam_ri) if has_ri else 0.0)

    if resume is not None:
        tune = 0
        state.restore(resume["state"])
        block_scale = resume["block_scale"]
        birth.restore(resume["birth"])
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
    flips = np.zeros((draws, m), dtype=np.int8)
    acc = {"block": [0, 0], "flip": [0, 0]}
    rejected = {"factorisation_failures": 0, "out_of_bounds": 0, "latent_skipped": 0}
    if data.probit:
        out["ystar"] = np.empty((draws, n), dtype=np.float32)
    if has_ri:
        out["lambda_ri"] = np.empty(draws)
    every = report_every(tune + draws)
    if report is not None:
        report(0)
    for it in range(tune + draws):
        if report is not None and it and it % every == 0:
            report(it)
        warm = it < tune
        if data.probit and data.likelihood:
            try:  # skipping depends on r alone, which this update leaves: still a valid kernel
                _draw_latent(state, data, rng)
            except np.linalg.LinAlgError:
                rejected["latent_skipped"] += 1
        if p:
            state.beta = _draw_beta(state, data, b_prior, rng)
        loglik = state.loglik(state.factor)
        if data.selection:
            moves = (
                _component_moves(state, rng, birth, functions.logp_r)
                if data.groups is None
                else _group_moves(state, rng, data.groups, birth, functions.logp_r)
            )
            for move in moves:
                accepted = False
                outside = any(abs(np.log(move.rho[j])) > LOG_BOUND for j in move.entering)
                if outside or not np.isfinite(move.log_terms):  # prior support: no algebra
                    rejected["out_of_bounds"] += outside
                else:
                    new_factor = state.try_factor(move.delta * move.rho, state.lam)
                    if new_factor is None:
                        rejected["factorisation_failures"] += 1
                    else:
                        new_ll = state.loglik(new_factor)
                        accepted = np.log(rng.random()) < new_ll - loglik + move.log_terms
                        if accepted:
                            state.delta, state.rho = move.delta, move.rho
                            state.factor, loglik = new_factor, new_ll
                acc["flip"][0] += accepted
                acc["flip"][1] += 1
                if not warm:
                    flips[it - tune, list(move.entering)] = IN_ACCEPTED if accepted else IN_REJECTED
                    flips[it - tune, list(move.leaving)] = (
                        OUT_ACCEPTED if accepted else OUT_REJECTED
                    )
        # (log lambda[, log lambda_ri], log r of included exposures): adaptive-Metropolis block
        for _ in range(BLOCK_MOVES):
            active = np.flatnonzero(state.delta)
            lead = [np.log(state.lam)] + ([np.log(state.lam_ri)] if has_ri else [])
            current = np.concatenate([lead, np.log(state.rho[active])])
            step = proposal.chol(active) @ rng.standard_normal(current.size)
            moved = current + block_scale / np.sqrt(current.size) * step
            accepted = False
            if np.abs(moved).max() > LOG_BOUND:
                rejected["out_of_bounds"] += 1
            else:
                lam_new = float(np.exp(moved[0]))
                lam_ri_new = float(np.exp(moved[1])) if has_ri else 0.0
                rho = state.rho.copy()
                rho[active] = np.exp(moved[n_lead:])
                prior_new = log_prior(lam_new, lam_ri_new, rho, active, moved)
                new_factor = (
                    state.try_factor(state.delta * rho, lam_new, lam_ri_new)
                    if np.isfinite(prior_new)  # outside the prior's support: reject at no cost
                    else None
                )
                if np.isfinite(prior_new) and new_factor is None:
                    rejected["factorisation_failures"] += 1
                if new_factor is not None:
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
        if not data.probit:
            state.sigma_sq = _draw_sigma_sq(state, data, s_prior, rng)
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
                recent = np.array(history[len(history) // 2 :])
                proposal.learn(recent)
                for j in range(m):
                    seen = recent[:, n_lead + j]
                    seen = seen[~np.isnan(seen)]
                    if len(seen) > 20:
                        birth.learn(j, seen)
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
    stats |= {k: float(v) for k, v in rejected.items()}
    learned = proposal.history if proposal.history is not None else np.zeros((0, m + n_lead))
    resume_info = {
        "state": state.snapshot(),
        "block_scale": block_scale,
        "birth": birth.to_dict(),
        "history": np.where(np.isnan(learned), None, learned).tolist(),
        "step": (resume["step"] + 1) if resume else 1,
    }
    if report is not None:
        report(tune + draws)
    return Chain(out, stats, resume_info, {"flip": flips})


def report_every(iterations: int) -> int:
    """Iterations between progress reports: about 1% of the chain (a shared counter written
    a hundred times, not once per iteration)."""
    return max(1, iterations // 100)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # Pool.terminate() must end the worker


# Progress of chains in worker processes: one shared integer per chain, the iterations it has
# done (-1: not started yet), written by its worker about every 1% of the chain
# (`report_every`) and polled by the parent every POLL_S seconds; no lock (one writer each)
_COUNTERS: Any = None
POLL_S = 0.25


def _start_worker(counters: Any) -> None:
    """Pool initializer: Ctrl-C is left to the parent; keep the shared progress counters."""
    global _COUNTERS
    _ignore_interrupts()
    _COUNTERS = counters


def _run_chain_single_thread(args: tuple, report: Callable[[int], None] | None = None) -> Chain:
    from threadpoolctl import threadpool_limits

    if report is None and _COUNTERS is not None:  # in a worker: write this chain's counter
        report = functools.partial(_COUNTERS.__setitem__, args[5])
    with threadpool_limits(1):
        return run_chain(*args, report=report)


def sample_chains(
    data: BkmrData,
    priors: dict[str, Any],
    tune: int,
    draws: int,
    chains: int,
    seed: int,
    cores: int | None = None,
    resume: list[dict[str, Any]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Chain], float]:
    """Run chains in parallel processes (one BLAS thread each); returns chains and wall time.
    `resume` (one entry per chain) continues earlier chains instead of starting new ones.
    `progress(chain, done)`, if given, hears each chain's iterations done (warm-up included:
    0 when it starts, then about every 1%, tune + draws at its end), in this process."""
    bkmr_priors.check_conjugate(priors, probit=data.probit)
    bkmr_priors.check_support(priors, LOG_BOUND)
    start = time.perf_counter()
    jobs = [
        (data, priors, tune, draws, seed, c, resume[c] if resume else None, chains)
        for c in range(chains)
    ]
    workers = min(chains, cores or os.cpu_count() or 1)
    if workers == 1:
        results = [
            _run_chain_single_thread(job, progress and functools.partial(progress, job[5]))
            for job in jobs
        ]
        return results, time.perf_counter() - start
    # multiprocessing's Pool, not ProcessPoolExecutor: leaving the block terminates the
    # workers, so Ctrl-C stops at once instead of after the queued chains have run; the
    # workers ignore SIGINT and leave it to this process (no traceback per worker), which
    # waits in short steps, reading the progress counters in between
    counters = None if progress is None else multiprocessing.RawArray("q", [-1] * chains)
    seen = [-1] * chains
    with multiprocessing.Pool(workers, initializer=_start_worker, initargs=(counters,)) as pool:
        pending = pool.map_async(_run_chain_single_thread, jobs)
        while not pending.ready():
            pending.wait(POLL_S)
            if progress is not None:
                _forward(counters, seen, progress)
        results = pending.get()
    if progress is not None:
        _forward(counters, seen, progress)
    return results, time.perf_counter() - start


def _forward(counters: Any, seen: list[int], progress: Callable[[int, int], None]) -> None:
    """Pass on the counters that changed since the last look."""
    for chain, done in enumerate(counters):
        if done != seen[chain]:
            seen[chain] = done
            progress(chain, done)
