"""BKMR summaries named after the R functions: h at new points from each draw's GP
conditional (SamplePred), exposure-response curves (PredictorResponseUnivar / Bivar /
BivarLevels), OverallRiskSummaries, SingVarRiskSummaries, SingVarIntSummaries, PIPs.

All start from `HSamples`: for each selected posterior draw, the GP conditional's mean of h at
the new points and one joint draw from that conditional. `est` is the posterior mean,
Rao-Blackwellised (the average of the conditional means: free of the noise of the single GP
draw per posterior draw); `sd`, `median` and the interval come from the joint draws, so any
contrast between points (risk summaries) has a coherent interval. h is on the outcome's scale
(probit scale for binary outcomes, with probabilities beside it, see `probability`); exposures
on the standardised log scale used by the model (the tables also give the concentration).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from bayesmetal.arviz_api import InferenceData
from bayesmetal.design import Design
from bayesmetal.models.bkmr import H_JITTER, covariates
from bayesmetal.summaries.posterior import draws as flat_draws

CHUNK = 8  # draws handled together: memory ~ CHUNK x n^2 x 8 bytes
PERSON_CHUNK_BYTES = 2**27  # working array of the average over persons (128 MiB)


@dataclass(frozen=True)
class HPosterior:
    """The data and a subset of posterior draws that h predictions need.

    Each draw predicts h from what it observes h at the data through: y - X beta (Gaussian),
    the latent y* - X beta (Gibbs probit), both with noise variance sigma2; or, for the PyMC
    probit model, which declares h at the data explicitly, h itself, with that model's jitter
    as the noise (so the prediction at a data point returns that draw's h).
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

    @property
    def noise(self) -> float:
        """Variance, over sigma2, of what h at the data is observed through."""
        return H_JITTER if self.h_data is not None else 1.0

    def target(self, idx: np.ndarray) -> np.ndarray:
        """(B, n): what h at the data is observed through, for the draws idx."""
        if self.h_data is not None:
            return self.h_data[idx]
        y = self.y[idx] if self.y.ndim == 2 else self.y[None]
        return y - self.beta[idx] @ self.X.T


def h_posterior(
    idata: InferenceData, design: Design, n_draws: int, knots: np.ndarray | None = None
) -> HPosterior:
    """Pick `n_draws` posterior draws evenly spaced over chains and draws (R's `sel`)."""
    posterior = idata.posterior
    total = posterior.sizes["chain"] * posterior.sizes["draw"]
    take = np.linspace(0, total - 1, min(n_draws, total)).astype(int)

    def pick(name: str) -> np.ndarray:
        return flat_draws(idata, name)[take].astype(float)

    probit = design.family == "bernoulli"
    random_intercept = "lambda_ri" in posterior
    return HPosterior(
        y=pick("ystar") if "ystar" in posterior else design.y,
        X=covariates(design),
        z=design.z,
        beta=pick("beta") if "beta" in posterior else np.zeros((len(take), 0)),
        sigma_sq=np.ones(len(take)) if probit else pick("sigma_sq"),
        lam=pick("lambda"),
        r=pick("r"),
        exposures=design.exposures,
        knots=knots,
        probit=probit,
        lam_ri=pick("lambda_ri") if random_intercept else None,
        onehot=(
            (design.group[:, None] == np.arange(len(design.group_levels))) * 1.0
            if random_intercept
            else None
        ),
        h_data=pick("h") if "h" in posterior else None,
    )


def _batched_kernel(a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """K for a batch of r's: (B, len(a), len(b))."""
    sr = np.sqrt(r)[:, None, :]
    aa, bb = a[None] * sr, b[None] * sr
    sq = (aa**2).sum(-1)[:, :, None] + (bb**2).sum(-1)[:, None, :] - 2 * aa @ bb.transpose(0, 2, 1)
    return np.exp(-np.maximum(sq, 0.0))


def _conditional_exact(
    post: HPosterior, z_new: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (B, G) and covariance (B, G, G) of h(z_new) given the target t, exact kernel:
    V = lam K + noise I (+ lam_ri Z Z'), mean lam K_gn V^-1 t, cov s2 (lam K_gg - lam^2 K_gn
    V^-1 K_ng)."""
    r, lam, s2 = post.r[idx], post.lam[idx][:, None, None], post.sigma_sq[idx][:, None, None]
    k_nn = _batched_kernel(post.z, post.z, r)
    v = lam * k_nn + post.noise * np.eye(len(post.z))[None]
    if post.onehot is not None:  # h is predicted net of the random intercepts
        v = v + post.lam_ri[idx][:, None, None] * (post.onehot @ post.onehot.T)[None]
    chol = np.linalg.cholesky(v)
    k_ng = _batched_kernel(post.z, z_new, r)  # (B, n, G)
    rhs = np.concatenate([post.target(idx)[:, :, None], k_ng], axis=2)
    solved = np.linalg.solve(chol, rhs)  # L^-1 [t, K_ng]
    w, big_w = solved[:, :, :1], solved[:, :, 1:]
    mean = (lam * big_w.transpose(0, 2, 1) @ w)[:, :, 0]
    k_gg = _batched_kernel(z_new, z_new, r)
    cov = s2 * (lam * k_gg - lam**2 * big_w.transpose(0, 2, 1) @ big_w)
    return mean, cov


def _conditional_knots(
    post: HPosterior, z_new: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Predictive-process conditional: kernel K_ak K_kk^-1 K_kb; V = noise I + W W' with
    W = [sqrt(lam) U_n (, sqrt(lam_ri) Z)], solved by Woodbury."""
    r, knots = post.r[idx], post.knots
    lam, s2 = post.lam[idx][:, None, None], post.sigma_sq[idx][:, None, None]
    k_kk = _batched_kernel(knots, knots, r) + 1e-6 * np.eye(len(knots))[None]
    l_kk = np.linalg.cholesky(k_kk)
    u_n = np.linalg.solve(l_kk, _batched_kernel(knots, post.z, r)).transpose(0, 2, 1)  # (B,n,k)
    u_g = np.linalg.solve(l_kk, _batched_kernel(knots, z_new, r)).transpose(0, 2, 1)  # (B,G,k)
    w = np.sqrt(lam) * u_n
    if post.onehot is not None:
        z_ri = np.sqrt(post.lam_ri[idx])[:, None, None] * post.onehot[None]
        w = np.concatenate([w, z_ri], axis=2)
    inner = post.noise * np.eye(w.shape[2])[None] + w.transpose(0, 2, 1) @ w

    def vinv(x: np.ndarray) -> np.ndarray:  # V^-1 x for x of shape (B, n, c)
        return (x - w @ np.linalg.solve(inner, w.transpose(0, 2, 1) @ x)) / post.noise

    vinv_t = vinv(post.target(idx)[:, :, None])
    vinv_u = vinv(u_n)
    mean = (lam * u_g @ (u_n.transpose(0, 2, 1) @ vinv_t))[:, :, 0]
    ut_vinv_u = u_n.transpose(0, 2, 1) @ vinv_u
    cov = s2 * (
        lam * u_g @ u_g.transpose(0, 2, 1) - lam**2 * u_g @ ut_vinv_u @ u_g.transpose(0, 2, 1)
    )
    return mean, cov


@dataclass(frozen=True)
class HSamples:
    """h at G new points for S posterior draws: each draw's GP-conditional mean (and
    variance), and one joint draw from that conditional."""

    mean: np.ndarray  # (S, G)
    draw: np.ndarray  # (S, G)
    var: np.ndarray | None = None  # (S, G) conditional variances; a contrast drops them

    def map(self, contrast: Callable[[np.ndarray], np.ndarray]) -> HSamples:
        """A linear contrast of the points (columns), applied alike to means and draws."""
        return HSamples(contrast(self.mean), contrast(self.draw))


def sample_h_new(post: HPosterior, z_new: np.ndarray, seed: int) -> HSamples:
    """Each posterior draw's GP conditional of h(z_new): mean, variances and one joint draw
    (R's SamplePred gives the draw only)."""
    rng = np.random.default_rng(seed)
    shape = (len(post.lam), len(z_new))
    mean, var, draw = np.empty(shape), np.empty(shape), np.empty(shape)
    conditional = _conditional_exact if post.knots is None else _conditional_knots
    for start in range(0, len(post.lam), CHUNK):  # chunks bound memory; each is vectorised
        idx = np.arange(start, min(start + CHUNK, len(post.lam)))
        mean[idx], cov = conditional(post, z_new, idx)
        cov = 0.5 * (cov + cov.transpose(0, 2, 1))
        var[idx] = np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0)
        # jitter relative to h's prior variance s2 lam, the scale of the rounding errors
        jitter = 1e-9 * post.sigma_sq[idx] * post.lam[idx]
        chol = np.linalg.cholesky(cov + jitter[:, None, None] * np.eye(len(z_new))[None])
        draw[idx] = mean[idx] + (chol @ rng.standard_normal((len(idx), len(z_new), 1)))[:, :, 0]
    return HSamples(mean, draw, var)


def _summarise(h: HSamples, prob: float = 0.95) -> dict[str, np.ndarray]:
    """est: the posterior mean, Rao-Blackwellised (average of the conditional means); sd,
    median and the equal-tailed interval from the joint draws. Where the posterior is mostly a
    spike at zero (PIPs near 0, a rare large value), the mean can lie outside the interval;
    the median cannot."""
    tail = (1 - prob) / 2
    return {
        "est": h.mean.mean(0),
        "sd": h.draw.std(0, ddof=1),
        "median": np.median(h.draw, 0),
        "lower": np.quantile(h.draw, tail, 0),
        "upper": np.quantile(h.draw, 1 - tail, 0),
    }


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
) -> pd.DataFrame:
    """Probit models: the table's summary, or `contrast`'s, on the probability scale
    (`prob_*` columns; see `probability`)."""
    if not post.probit:
        return table
    p = probability(post, h)
    summary = _summarise(p if contrast is None else p.map(contrast), prob)
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
    PredictorResponseUnivar)."""
    m = post.z.shape[1]
    base = _at_quantiles(post.z, q_fixed)
    points, labels, grid_values = [], [], []
    for j in range(m):
        grid = np.linspace(post.z[:, j].min(), post.z[:, j].max(), ngrid)
        block = np.tile(base, (ngrid, 1))
        block[:, j] = grid
        points.append(block)
        labels += [post.exposures[j]] * ngrid
        grid_values.append(grid)
    samples = sample_h_new(post, np.vstack(points), seed)
    table = pd.DataFrame(
        {"variable": labels, "z": np.concatenate(grid_values), **_summarise(samples, prob)}
    )
    return _with_probability(table, post, samples, prob)


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
    PredictorResponseBivarLevels, the Cd x Mn cross-section figure)."""
    base = _at_quantiles(post.z, q_fixed)
    points, rows = [], []
    for first, second in pairs:
        i, j = post.exposures.index(first), post.exposures.index(second)
        grid = np.linspace(post.z[:, i].min(), post.z[:, i].max(), ngrid)
        for q in qs:
            block = np.tile(base, (ngrid, 1))
            block[:, i] = grid
            block[:, j] = np.quantile(post.z[:, j], q)
            points.append(block)
            rows += [(first, second, q, g) for g in grid]
    samples = sample_h_new(post, np.vstack(points), seed)
    table = pd.DataFrame(rows, columns=["variable1", "variable2", "quantile2", "z1"])
    return table.assign(**_summarise(samples, prob))


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
    return table.assign(**_summarise(samples, prob))


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
    table = pd.DataFrame({"quantile": qs, **_summarise(samples.map(_vs_first), prob)})
    return _with_probability(table, post, samples, prob, _vs_first)


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
    table = pd.DataFrame(rows, columns=["variable", "q_fixed"]).assign(**_summarise(diff, prob))
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
    return pd.DataFrame({"variable": list(post.exposures), **_summarise(interaction, prob)})


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
    delta = flat_draws(idata, "delta")
    names = list(idata.posterior["delta"].coords["exposure"].to_numpy())
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
    return pd.DataFrame({"group": list(groups), **_summarise(diff, prob)})
