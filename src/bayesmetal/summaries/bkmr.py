"""BKMR summaries named after the R functions: h at new points from each draw's GP
conditional (SamplePred), exposure-response curves (PredictorResponseUnivar / Bivar /
BivarLevels), OverallRiskSummaries, SingVarRiskSummaries, SingVarIntSummaries, PIPs.

All start from `HSamples`: for each selected posterior draw, the GP conditional's mean of h at
the new points and one joint draw from that conditional. Every summary row reports (see
`_summarise`): `estimate`, the point estimate, which is the posterior median (`estimate_is`
says so); `mean`, Rao-Blackwellised (the average of the conditional means: free of the noise of
the single GP draw per posterior draw); `median`, `sd` and the equal-tailed interval from the
joint draws, so any contrast between points (risk summaries) has a coherent interval; and a
`note` where the mean cannot stand for the posterior (outside its interval, or an exposure
almost never included). The median is the point estimate because it always lies inside its
interval: with PIPs near 0 the posterior of an effect is a spike at zero with rare excursions,
whose mean is pulled outside the interval by a few draws.

h is on the outcome's scale (probit scale for binary outcomes, with probabilities beside it,
see `probability`) and, as in R's kmbayes, carries the level: h(z) is the expected outcome at
exposures z for covariates at their means (X is centred). The curves therefore also give
`change`: h minus h with every exposure at its q_fixed quantile, per draw (its interval
excludes the uncertainty of the level). Exposures are on the standardised log scale used by
the model (the tables also give the concentration).

With a survey design (gaussian outcomes: the weighted pseudo-likelihood of `bkmr.kernel`),
every summary's draws are also rescaled to its design-based variance (`DesignAdjustment`): h
at the data is drawn jointly with h at the summary's points, each person's weighted
log-likelihood given that h is the per-person term the infinitesimal jackknife of
`survey_influence` needs, and each summary row (each contrast alone) is rescaled about its
median, with the Rao-Blackwellised `mean`'s distance from the median scaled alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtr
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from bayesmetal import survey_influence
from bayesmetal.arviz_api import InferenceData
from bayesmetal.bkmr.kernel import (
    Noise,
    coefficient_conditional,
    exact_factor,
    gaussian_conditional,
    kernel,
    knot_cholesky,
    robust_cholesky,
)
from bayesmetal.bkmr.posterior import (
    BETA,
    DELTA,
    H_JITTER,
    LAMBDA,
    LAMBDA_RI,
    SIGMA_SQ,
    YSTAR,
    H,
    R,
)
from bayesmetal.design import Design
from bayesmetal.summaries.posterior import draws as flat_draws
from bayesmetal.summaries.posterior import sd
from bayesmetal.survey_adjust import UNADJUSTED
from bayesmetal.survey_design import SurveyWeights

PERSON_CHUNK_BYTES = 2**27  # working array of the average over persons (128 MiB)
POINT_ESTIMATE = "median"  # the statistic reported as `estimate` (see the module docstring)
RARE_INCLUSION = 0.01  # below this posterior inclusion probability a row says so (`note`)
UNADJUSTED_NOTE = "design variance not estimable from these draws: interval not design-adjusted"


@dataclass(frozen=True)
class HPosterior:
    """The data and a subset of posterior draws that h predictions need.

    Each draw predicts h from what it observes h at the data through: y - X beta (Gaussian),
    the latent y* - X beta (Gibbs probit), both with noise variance sigma2 (sigma2 / w_i with
    survey weights w); or, for the PyMC probit model, which declares h at the data explicitly,
    h itself, with that model's jitter as the noise (so the prediction at a data point returns
    that draw's h).
    """

    y: np.ndarray  # (n,) observed y, or (S, n) latent y* draws of the Gibbs probit model
    X: np.ndarray  # (n, p) centred covariates
    z: np.ndarray
    beta: np.ndarray  # (S, p)
    sigma_sq: np.ndarray  # (S,)
    lam: np.ndarray  # (S,)
    r: np.ndarray  # (S, M)
    exposures: tuple[str, ...]
    knots: np.ndarray | None = None
    probit: bool = False
    lam_ri: np.ndarray | None = None  # (S,) random-intercept variance ratio
    onehot: np.ndarray | None = None  # (n, groups) random-intercept design
    h_data: np.ndarray | None = None  # (S, n) h at the data points (PyMC probit model)
    delta: np.ndarray | None = None  # (all draws, M) inclusion indicators, for `inclusion`
    # with knots, per draw: the conditional mean m and factor B of the predictive process's
    # kernel weights c (h(z) = K(z, knots) c, c ~ N(m, B B')), shared by every summary
    # (filled by `_coefficients`: they do not depend on the new points)
    coefficients: dict[int, tuple[np.ndarray, ...]] = field(default_factory=dict, repr=False)
    weights: np.ndarray | None = None  # (n,) survey weights of a weighted pseudo-likelihood
    survey: SurveyWeights | None = None  # the design the summaries are adjusted to
    chains: int = 1  # the draws are `chains` equal chain-major blocks (the jackknife's halves)
    seed: int = 0  # of the design adjustment's t multipliers

    @property
    def noise(self) -> Noise:
        """Variance, over sigma2, of what h at the data is observed through (per person with
        survey weights)."""
        if self.h_data is not None:
            return H_JITTER
        return 1.0 if self.weights is None else 1.0 / self.weights

    def target(self, s: int) -> np.ndarray:
        """(n,): what h at the data is observed through, for draw s."""
        if self.h_data is not None:
            return self.h_data[s]
        y = self.y[s] if self.y.ndim == 2 else self.y
        return y - self.X @ self.beta[s]

    def inclusion(self, names: list[str] | tuple[str, ...]) -> float:
        """Posterior probability that any of the exposures `names` is in h (their PIP for
        one exposure), over all draws; NaN without selection."""
        if self.delta is None or not len(names):
            return float("nan")
        cols = [self.exposures.index(name) for name in names]
        return float(self.delta[:, cols].max(axis=1).mean())


def _evenly(chains: int, draws: int, n_draws: int, by_chain: bool) -> np.ndarray:
    """Flat indices of about `n_draws` draws evenly spaced over chains and draws (R's `sel`);
    `by_chain`: the same draws of every chain, so that they form equal chain blocks."""
    total = chains * draws
    if not by_chain:
        return np.linspace(0, total - 1, min(n_draws, total)).astype(int)
    step = max(1, -(-total // n_draws))
    return (np.arange(chains)[:, None] * draws + np.arange(0, draws, step)).ravel()


def h_posterior(
    idata: InferenceData,
    design: Design,
    n_draws: int,
    knots: np.ndarray | None = None,
    seed: int = 0,
) -> HPosterior:
    """Pick about `n_draws` posterior draws evenly spaced over chains and draws (R's `sel`);
    with a survey design, of the pseudo-posterior (the draws h was conditioned on), and the
    same draws of every chain (`DesignAdjustment` splits them by chain)."""
    survey = design.survey if design.family == "gaussian" else None
    if UNADJUSTED in idata.groups():  # beta's draws were design-adjusted: not h's partners
        idata = InferenceData(posterior=getattr(idata, UNADJUSTED))
    posterior = idata.posterior
    chains = posterior.sizes["chain"]
    take = _evenly(chains, posterior.sizes["draw"], n_draws, by_chain=survey is not None)

    def pick(name: str) -> np.ndarray:
        return flat_draws(idata, name)[take].astype(float)

    probit = design.family == "bernoulli"
    random_intercept = LAMBDA_RI in posterior
    return HPosterior(
        y=pick(YSTAR) if YSTAR in posterior else design.y,
        X=design.X,
        z=design.z,
        beta=pick(BETA) if BETA in posterior else np.zeros((len(take), 0)),
        sigma_sq=np.ones(len(take)) if probit else pick(SIGMA_SQ),
        lam=pick(LAMBDA),
        r=pick(R),
        exposures=design.exposures,
        knots=knots,
        probit=probit,
        lam_ri=pick(LAMBDA_RI) if random_intercept else None,
        onehot=(
            (design.group[:, None] == np.arange(len(design.group_levels))) * 1.0
            if random_intercept
            else None
        ),
        h_data=pick(H) if H in posterior else None,
        delta=flat_draws(idata, DELTA).astype(float) if DELTA in posterior else None,
        weights=design.likelihood_weights,
        survey=survey,
        chains=chains if survey is not None else 1,
        seed=seed,
    )


def _coefficients(post: HPosterior, s: int) -> tuple[np.ndarray, np.ndarray]:
    """With knots: draw s's conditional of the kernel weights c, h(z) = K(z, knots) c ~
    N(m, B B') (`coefficient_conditional`), computed once per draw and cached."""
    if s not in post.coefficients:
        r = post.r[s]
        lam_ri = 0.0 if post.lam_ri is None else post.lam_ri[s]
        post.coefficients[s] = coefficient_conditional(
            kernel(post.knots, post.z, r),
            knot_cholesky(post.knots, r),
            post.target(s),
            post.lam[s],
            post.sigma_sq[s],
            post.onehot,
            lam_ri,
            post.noise,
        )
    return post.coefficients[s]


def _conditional(
    post: HPosterior, z_new: np.ndarray, s: int, same_group: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (G,) and covariance (G, G) of h(z_new) under draw s given its target t, V = noise I
    + lam K (+ lam_ri Z Z'): h is predicted net of the random intercepts. With knots, the
    conditional of the predictive process's kernel weights, mapped to the points."""
    r, lam, s2 = post.r[s], post.lam[s], post.sigma_sq[s]
    lam_ri = 0.0 if post.lam_ri is None else post.lam_ri[s]
    if post.knots is None:
        factor = exact_factor(post.z, r, lam, same_group, lam_ri, post.noise)
        cross, prior = kernel(post.z, z_new, r), kernel(z_new, z_new, r)
        return gaussian_conditional(factor, cross, prior, post.target(s), lam, s2)
    mean, factor = _coefficients(post, s)
    k_g = kernel(z_new, post.knots, r)
    root = k_g @ factor
    return k_g @ mean, root @ root.T


def weighted_loglik(post: HPosterior, h_data: np.ndarray) -> np.ndarray:
    """(S, n): each person's survey weight times log N(y_i; h_i + x_i beta, sigma2), per draw,
    given h at the data `h_data` (S, n): the pseudo-likelihood's per-person terms."""
    resid = np.stack([post.target(s) for s in range(len(post.lam))]) - h_data
    return post.weights * norm.logpdf(resid, scale=np.sqrt(post.sigma_sq)[:, None])


@dataclass(frozen=True)
class DesignAdjustment:
    """Rescales summary draws to their design-based variance (`survey_influence`), given each
    draw's weighted per-person log-likelihood (S, n) from the h drawn with them."""

    survey: SurveyWeights
    loglik: np.ndarray
    chains: int
    seed: int

    def __call__(
        self, values: np.ndarray, draws: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The design variance of each column of `values` (S, G), the summaries' draws taken
        with the log-likelihood's; `draws` (chain, draw, G), by default `values` in chain
        blocks, rescaled to it about their median. Returns the rescaled draws in the shape of
        `values` (of `draws` when given); per column the factor applied to deviations from
        the median (before the t multipliers), and whether the column kept its spread
        because the design variance estimate was not positive."""
        blocks = values.reshape(self.chains, -1, values.shape[1])
        loglik = self.loglik.reshape(self.chains, -1, self.loglik.shape[1])
        variance = survey_influence.design_variance(blocks, loglik, self.survey)
        target = blocks if draws is None else draws
        variance, unseen = survey_influence.estimable(target, variance)
        adjusted = survey_influence.adjust(target, variance, self.survey.t_df, self.seed)
        factors = survey_influence.scale_factors(target, variance)
        return (adjusted.reshape(values.shape) if draws is None else adjusted), factors, unseen


@dataclass(frozen=True)
class HSamples:
    """h at G new points for S posterior draws: each draw's GP-conditional mean (and
    variance), and one joint draw from that conditional; with a survey design, what rescales
    the draws of any contrast of them to the design (`design`)."""

    mean: np.ndarray  # (S, G)
    draw: np.ndarray  # (S, G)
    var: np.ndarray | None = None  # (S, G) conditional variances; a contrast drops them
    design: DesignAdjustment | None = None

    def map(self, contrast: Callable[[np.ndarray], np.ndarray]) -> HSamples:
        """A linear contrast of the points (columns), applied alike to means and draws."""
        return HSamples(contrast(self.mean), contrast(self.draw), design=self.design)


def sample_h_new(post: HPosterior, z_new: np.ndarray, seed: int) -> HSamples:
    """Each posterior draw's GP conditional of h(z_new): mean, variances and one joint draw
    (R's SamplePred gives the draw only); with a survey design, h at the data drawn jointly
    gives the draws' `DesignAdjustment`."""
    if post.survey is None:
        return _sample_h(post, z_new, seed)
    joint = _sample_h(post, np.vstack([z_new, post.z]), seed)
    g = len(z_new)
    design = DesignAdjustment(
        post.survey, weighted_loglik(post, joint.draw[:, g:]), post.chains, post.seed
    )
    return HSamples(joint.mean[:, :g], joint.draw[:, :g], joint.var[:, :g], design)


def _sample_h(post: HPosterior, z_new: np.ndarray, seed: int) -> HSamples:
    """Mean, variances and one joint draw of h(z_new) under each draw's GP conditional. With
    knots, h = K_gk c with c ~ N(m, B B') in k dimensions (`_coefficients`): the draw is
    K_gk (m + B e), e ~ N(0, I_k), and the variances are the row sums of (K_gk B)^2; without
    knots, a G x G Cholesky per draw."""
    rng = np.random.default_rng(seed)
    shape = (len(post.lam), len(z_new))
    mean, var, draw = np.empty(shape), np.empty(shape), np.empty(shape)
    if post.knots is not None:
        # k-dimensional algebra: threaded BLAS spent 30 times longer waking threads
        with threadpool_limits(1):
            for s in range(len(post.lam)):
                coef_mean, factor = _coefficients(post, s)
                k_g = kernel(z_new, post.knots, post.r[s])
                root = k_g @ factor
                mean[s] = k_g @ coef_mean
                var[s] = np.einsum("gk,gk->g", root, root)
                draw[s] = mean[s] + root @ rng.standard_normal(len(factor))
        return HSamples(mean, draw, var)
    same_group = None if post.onehot is None else post.onehot @ post.onehot.T
    for s in range(len(post.lam)):
        mean[s], cov = _conditional(post, z_new, s, same_group)
        cov = 0.5 * (cov + cov.T)
        var[s] = np.maximum(np.diag(cov), 0.0)
        # jitter relative to h's prior variance s2 lam, the scale of the rounding errors
        scale = post.sigma_sq[s] * post.lam[s]
        chol = robust_cholesky(cov, jitter=1e-9, max_jitter=1e-9, scale=scale)
        draw[s] = mean[s] + chol @ rng.standard_normal(len(z_new))
    return HSamples(mean, draw, var)


def _notes(
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    prob: float,
    included: np.ndarray,
    unadjusted: np.ndarray,
) -> np.ndarray:
    """Per row, what a reader must know before quoting the mean: the exposures it depends on
    are almost never in h (inclusion probability below RARE_INCLUSION), or the mean lies
    outside its own interval, or a survey design could not adjust its interval; '' otherwise."""
    notes = []
    for m, lo, hi, p, kept in zip(mean, lower, upper, included, unadjusted, strict=True):
        parts = [UNADJUSTED_NOTE] if kept else []
        if p < RARE_INCLUSION:  # NaN (no selection) compares False
            parts.append(f"PIP < {RARE_INCLUSION:g} ({p:.2g}): estimate reflects rare inclusions")
        tol = 1e-12 * max(1.0, abs(lo), abs(hi))  # rounding, not an excursion
        if not lo - tol <= m <= hi + tol:
            parts.append(
                f"mean outside the {prob:.0%} interval (a spike with rare excursions): "
                f"the {POINT_ESTIMATE} is the estimate"
            )
        notes.append("; ".join(parts))
    return np.array(notes, dtype=object)


def _summarise(
    h: HSamples, prob: float = 0.95, included: np.ndarray | float = np.nan
) -> dict[str, np.ndarray]:
    """estimate: the point estimate, the posterior median (`estimate_is`); mean: the posterior
    mean, Rao-Blackwellised (average of the conditional means); median, sd and the
    equal-tailed interval from the joint draws; note (`_notes`), given each row's inclusion
    probability `included`. Where the posterior is mostly a spike at zero (PIPs near 0, a rare
    large value), the mean can lie outside the interval; the median cannot. With a survey
    design the draws are first rescaled to the design about their median
    (`DesignAdjustment`), and the mean's distance from the median by the same factor."""
    tail = (1 - prob) / 2
    draws, unadjusted = h.draw, np.zeros(h.draw.shape[1], dtype=bool)
    mean, median = h.mean.mean(0), np.median(draws, 0)
    if h.design is not None:
        draws, factors, unadjusted = h.design(h.draw)
        mean = median + factors * (mean - median)
    lower, upper = np.quantile(draws, tail, 0), np.quantile(draws, 1 - tail, 0)
    included = np.broadcast_to(np.asarray(included, dtype=float), mean.shape)
    return {
        "estimate": median,
        "estimate_is": np.full(mean.shape, POINT_ESTIMATE, dtype=object),
        "mean": mean,
        "median": median,
        "sd": sd(draws),
        "lower": lower,
        "upper": upper,
        "note": _notes(mean, lower, upper, prob, included, unadjusted),
    }


def _change(h: HSamples, prob: float) -> dict[str, np.ndarray]:
    """`change` columns: the median and interval of every point but the first minus the
    first (the reference point), per draw."""
    diff = _summarise(h.map(_vs_first), prob)
    return {"change": diff["median"], "change_lower": diff["lower"], "change_upper": diff["upper"]}


def _person_average(values: np.ndarray, offsets: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """mean_i Phi((values[s, g] + offsets[s, i]) / scale[s, g]) for every draw s and point g.

    The (S, G, n) array is never formed: (draw, point) pairs go in chunks whose working array
    is about PERSON_CHUNK_BYTES, whatever n, G and S."""
    owner = np.repeat(np.arange(values.shape[0]), values.shape[1])
    flat_values, flat_scale = values.ravel(), scale.ravel()
    out = np.empty(values.size)
    step = max(1, PERSON_CHUNK_BYTES // (8 * offsets.shape[1]))
    for start in range(0, values.size, step):
        k = slice(start, start + step)
        work = offsets[owner[k]]  # a (chunk, n) copy, transformed in place
        work += flat_values[k, None]
        work /= flat_scale[k, None]
        out[k] = ndtr(work, out=work).mean(1)
    return out.reshape(values.shape)


def probability(post: HPosterior, h: HSamples) -> HSamples:
    """P(y = 1) at the new points as an average predictive comparison: per posterior draw,
    the mean over the sample's persons i of Phi(h(z) + x_i' beta), x_i their centred
    covariates (not Phi(h) at the covariate means: Phi is not linear). Contrasts of it are
    risk differences averaged over persons. The Rao-Blackwellised mean uses E Phi(h + c) =
    Phi((m + c) / sqrt(1 + v)) under each draw's conditional h ~ N(m, v). With a random
    intercept, u ~ N(0, lambda_ri) is averaged out too (a person of a new cluster): the 1
    becomes 1 + lambda_ri."""
    offsets = post.beta @ post.X.T  # (S, n)
    latent = 1.0 + (np.zeros_like(post.lam) if post.lam_ri is None else post.lam_ri)[:, None]
    mean = _person_average(h.mean, offsets, np.sqrt(latent + h.var))
    draw = _person_average(h.draw, offsets, np.broadcast_to(np.sqrt(latent), h.draw.shape))
    return HSamples(mean, draw)


def _with_probability(
    table: pd.DataFrame,
    post: HPosterior,
    h: HSamples,
    prob: float,
    contrast: Callable[[np.ndarray], np.ndarray] | None = None,
    included: np.ndarray | float = np.nan,
) -> pd.DataFrame:
    """Probit models: the table's summary, or `contrast`'s, on the probability scale
    (`prob_*` columns; see `probability`)."""
    if not post.probit:
        return table
    p = probability(post, h)
    summary = _summarise(p if contrast is None else p.map(contrast), prob, included)
    del summary["estimate_is"]  # the same statistic as on the h scale
    return table.assign(**{f"prob_{k}": v for k, v in summary.items()})


def _pair_diff(x: np.ndarray) -> np.ndarray:
    """Second minus first point of each consecutive pair of columns."""
    return x[:, 1::2] - x[:, 0::2]


def _vs_first(x: np.ndarray) -> np.ndarray:
    """Every point but the first minus the first."""
    return x[:, 1:] - x[:, :1]


def _at_quantiles(z: np.ndarray, q: float) -> np.ndarray:
    return np.quantile(z, q, axis=0)


def pred_resp_univar(
    post: HPosterior, ngrid: int = 30, q_fixed: float = 0.5, seed: int = 0, prob: float = 0.95
) -> pd.DataFrame:
    """h over a grid of each exposure, the others at their q_fixed quantile (R:
    PredictorResponseUnivar), and its `change` from all exposures at q_fixed (first point)."""
    m = post.z.shape[1]
    base = _at_quantiles(post.z, q_fixed)
    points, labels, grid_values = [base[None]], [], []
    for j in range(m):
        grid = np.linspace(post.z[:, j].min(), post.z[:, j].max(), ngrid)
        block = np.tile(base, (ngrid, 1))
        block[:, j] = grid
        points.append(block)
        labels += [post.exposures[j]] * ngrid
        grid_values.append(grid)
    reference = sample_h_new(post, np.vstack(points), seed)
    samples = reference.map(lambda x: x[:, 1:])
    samples = HSamples(samples.mean, samples.draw, reference.var[:, 1:], reference.design)
    included = np.array([post.inclusion([name]) for name in labels])
    table = pd.DataFrame(
        {
            "variable": labels,
            "z": np.concatenate(grid_values),
            **_summarise(samples, prob, included),
            **_change(reference, prob),
        }
    )
    return _with_probability(table, post, samples, prob, included=included)


def pred_resp_bivar_levels(
    post: HPosterior,
    pairs: list[tuple[str, str]],
    ngrid: int = 30,
    qs: tuple[float, ...] = (0.25, 0.5, 0.75),
    q_fixed: float = 0.5,
    seed: int = 0,
    prob: float = 0.95,
) -> pd.DataFrame:
    """h over exposure 1 with exposure 2 held at each of `qs`, others at q_fixed (R:
    PredictorResponseBivarLevels, the Cd x Mn cross-section figure), and its `change` from all
    exposures at q_fixed."""
    base = _at_quantiles(post.z, q_fixed)
    points, rows = [base[None]], []
    for first, second in pairs:
        i, j = post.exposures.index(first), post.exposures.index(second)
        grid = np.linspace(post.z[:, i].min(), post.z[:, i].max(), ngrid)
        for q in qs:
            block = np.tile(base, (ngrid, 1))
            block[:, i] = grid
            block[:, j] = np.quantile(post.z[:, j], q)
            points.append(block)
            rows += [(first, second, q, g) for g in grid]
    reference = sample_h_new(post, np.vstack(points), seed)
    samples = reference.map(lambda x: x[:, 1:])
    table = pd.DataFrame(rows, columns=["variable1", "variable2", "quantile2", "z1"])
    included = np.array([post.inclusion([first]) for first, *_ in rows])
    return table.assign(**_summarise(samples, prob, included), **_change(reference, prob))


def pred_resp_bivar(
    post: HPosterior,
    pairs: list[tuple[str, str]],
    ngrid: int = 10,
    q_fixed: float = 0.5,
    seed: int = 0,
    prob: float = 0.95,
) -> pd.DataFrame:
    """h over a grid of two exposures, the others at q_fixed (R: PredictorResponseBivar)."""
    base = _at_quantiles(post.z, q_fixed)
    points, rows = [], []
    for first, second in pairs:
        i, j = post.exposures.index(first), post.exposures.index(second)
        g1 = np.linspace(post.z[:, i].min(), post.z[:, i].max(), ngrid)
        g2 = np.linspace(post.z[:, j].min(), post.z[:, j].max(), ngrid)
        a, b = np.meshgrid(g1, g2, indexing="ij")
        block = np.tile(base, (a.size, 1))
        block[:, i], block[:, j] = a.ravel(), b.ravel()
        points.append(block)
        rows += [(first, second, u, v) for u, v in zip(a.ravel(), b.ravel(), strict=True)]
    samples = sample_h_new(post, np.vstack(points), seed)
    table = pd.DataFrame(rows, columns=["variable1", "variable2", "z1", "z2"])
    included = np.array([post.inclusion([first, second]) for first, second, *_ in rows])
    return table.assign(**_summarise(samples, prob, included))


OVERALL_QS = tuple(float(q) for q in np.round(np.arange(0.25, 0.76, 0.05), 2))


def overall_risk(
    post: HPosterior,
    qs: tuple[float, ...] = OVERALL_QS,
    q_fixed: float = 0.5,
    seed: int = 0,
    prob: float = 0.95,
) -> pd.DataFrame:
    """h(all exposures at quantile q) - h(all at q_fixed) (R: OverallRiskSummaries); for
    probit models also the risk difference averaged over persons (`probability`)."""
    points = np.vstack([_at_quantiles(post.z, q_fixed)] + [_at_quantiles(post.z, q) for q in qs])
    samples = sample_h_new(post, points, seed)
    included = post.inclusion(post.exposures)
    table = pd.DataFrame({"quantile": qs, **_summarise(samples.map(_vs_first), prob, included)})
    return _with_probability(table, post, samples, prob, _vs_first, included)


def single_var_risk(
    post: HPosterior,
    qs_diff: tuple[float, float] = (0.25, 0.75),
    q_fixed: tuple[float, ...] = (0.25, 0.5, 0.75),
    seed: int = 0,
    prob: float = 0.95,
    samples_out: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, HSamples]:
    """h when one exposure moves from its qs_diff[0] to qs_diff[1] quantile, the others fixed
    at each q_fixed (R: SingVarRiskSummaries)."""
    low, high = (_at_quantiles(post.z, q) for q in qs_diff)
    points, rows = [], []
    for j, name in enumerate(post.exposures):
        for q in q_fixed:
            base = _at_quantiles(post.z, q)
            a, b = base.copy(), base.copy()
            a[j], b[j] = low[j], high[j]
            points += [a, b]
            rows.append((name, q))
    diff = sample_h_new(post, np.vstack(points), seed).map(_pair_diff)
    included = np.array([post.inclusion([name]) for name, _ in rows])
    table = pd.DataFrame(rows, columns=["variable", "q_fixed"])
    table = table.assign(**_summarise(diff, prob, included))
    return (table, diff) if samples_out else table


def single_var_interaction(
    post: HPosterior,
    qs_diff: tuple[float, float] = (0.25, 0.75),
    qs_fixed: tuple[float, float] = (0.25, 0.75),
    seed: int = 0,
    prob: float = 0.95,
) -> pd.DataFrame:
    """Single-variable risk with others at qs_fixed[1] minus with others at qs_fixed[0]
    (R: SingVarIntSummaries)."""
    _, diff = single_var_risk(post, qs_diff, qs_fixed, seed, prob, samples_out=True)
    interaction = diff.map(_pair_diff)
    included = np.array([post.inclusion([name]) for name in post.exposures])
    return pd.DataFrame(
        {"variable": list(post.exposures), **_summarise(interaction, prob, included)}
    )


def with_concentration(
    table: pd.DataFrame,
    design: Design,
    variable: str = "variable",
    z: str = "z",
    column: str = "concentration",
) -> pd.DataFrame:
    """Map standardised log exposure back to the concentration in the file's units."""
    index = [design.exposures.index(v) for v in table[variable]]
    logs = table[z].to_numpy() * design.log_scale[index] + design.log_centre[index]
    return table.assign(**{column: np.exp(logs)})


def pips(idata: InferenceData, groups: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Posterior inclusion probability of each exposure: mean of delta (R: ExtractPIPs).

    With hierarchical groups also the group PIP (some member in) and the conditional PIP
    (this member, given its group is in), as R's CalcGroupPIPs / CalcWithinGroupPIPs.
    """
    delta = flat_draws(idata, DELTA)
    names = list(idata.posterior[DELTA].coords["exposure"].to_numpy())
    table = pd.DataFrame({"variable": names, "pip": delta.mean(0)})
    if groups:
        group_of = {e: g for g, members in groups.items() for e in members}
        table.insert(1, "group", [group_of[n] for n in names])
        group_pip, cond_pip = [], []
        for j, name in enumerate(names):
            cols = [names.index(e) for e in groups[group_of[name]]]
            group_in = delta[:, cols].max(axis=1)
            group_pip.append(group_in.mean())
            cond_pip.append(delta[group_in == 1, j].mean() if group_in.any() else float("nan"))
        table.insert(2, "group_pip", group_pip)
        table.insert(3, "cond_pip", cond_pip)
    return table


def group_risk(
    post: HPosterior,
    groups: dict[str, list[str]],
    qs_diff: tuple[float, float] = (0.25, 0.75),
    q_fixed: float = 0.5,
    seed: int = 0,
    prob: float = 0.95,
) -> pd.DataFrame:
    """h when every exposure of a group moves from its qs_diff[0] to qs_diff[1] quantile,
    the others at q_fixed: the group-level risk R's bkmr does not offer."""
    low, high = (_at_quantiles(post.z, q) for q in qs_diff)
    base = _at_quantiles(post.z, q_fixed)
    points = []
    for members in groups.values():
        cols = [post.exposures.index(e) for e in members]
        a, b = base.copy(), base.copy()
        a[cols], b[cols] = low[cols], high[cols]
        points += [a, b]
    diff = sample_h_new(post, np.vstack(points), seed).map(_pair_diff)
    included = np.array([post.inclusion(members) for members in groups.values()])
    return pd.DataFrame({"group": list(groups), **_summarise(diff, prob, included)})
