"""Quantile g-computation (Keil et al. 2020; R: qgcomp), Bayesian, as a registered model.

Conditional model, on the design's quantile scores q_j = 0..q-1 of each exposure:

    g(E[y]) = b0 + sum_j beta_j q_j [+ sum_j beta2_j q_j^2] + X gamma

with the project's families and links (`bayesmetal.families`). `degree: 2` adds each
exposure's squared score, as qgcomp's conditional model `y ~ x1 + I(x1^2) + ...` with
`degree = 2`. The declaration holds `psi` = sum_j beta_j (and `psi_sq` = sum_j beta2_j), so
their convergence is checked with the rest.

Summaries, named as qgcomp reports them, each from the posterior draws:

- `psi` (qgcomp's psi / psi1): the joint effect on the linear predictor of raising every
  exposure by one quantile, sum_j beta_j (mean difference for gaussian, log odds ratio for
  bernoulli, log rate ratio for the count families; the ratio as exp). For identity and log
  links the g-computation MSM below gives exactly these numbers (the mean over people of
  exp(eta_i + k psi) is exp(k psi) times a constant), so with degree 1 only bernoulli has
  separate marginal rows. With degree 2 the conditional sums are rows psi1, psi2 (model
  'conditional') and the MSM's terms rows psi1, psi2 (model 'msm...'), on the link scale only.
- g-computation (qgcomp.glm.boot): per posterior draw, every person's expected outcome with
  all exposures set to joint quantile k = 0..q-1, averaged over the sample, then a marginal
  structural model (MSM) fitted across k by the same estimating equations qgcomp's `glm` fit
  solves on the stacked predictions (which depend on the averages alone): identity link
  (gaussian), log link with Poisson variance (counts), and for bernoulli the log link with
  binomial variance (`rr = TRUE`: marginal risk ratio), the logit link (`rr = FALSE`: qgcomp's
  marginal odds ratio) and, beyond qgcomp, an identity-link least-squares MSM (risk
  difference). `degree: 2` fits a quadratic MSM: psi1, psi2. Each is summarised over draws.
- partial effects and weights (qgcomp.glm.noboot's pos.psi, neg.psi, pos.weights,
  neg.weights; degree 1 only, as in qgcomp), two ways, both reported:
  * plug-in: qgcomp's formula on the posterior means of beta (side by the sign of the mean,
    beta <= 0 counted negative as in qgcomp; w_j = |beta_j| / sum of |beta| on its side;
    pos.psi = sum of the positive means): the `plugin` column and the `weight` column;
  * per draw: the same formula applied to each draw's betas (an exposure counts on the side
    its coefficient has in that draw), summarised as posterior mean, SD and interval, with
    `prob_side` = P(beta_j on its plug-in side). The two differ where a coefficient's sign is
    uncertain: the per-draw weight then spreads over both sides, and the per-draw partial
    sums are pushed away from zero (the positive parts of noise add up: a null mixture has
    pos.psi > 0 in every draw). Neither is a test of a direction; qgcomp's MLE partial
    effects carry the same selection bias (Keil et al. recommend sample splitting), so the
    partial-sum rows carry no probability of direction (their sign is fixed by construction).

Tables: `psi` (one row per parameter and model: mean, median, sd, interval, probability of
direction, plug-in value, and exp() as ratio, ratio_lower, ratio_upper where a ratio is
meant), `weights` (degree 1), `gcomp` (expected outcome at each joint quantile k: qgcomp's
y.expected averaged, with the MSM's fitted curve, qgcomp's y.expectedmsm). Figures: `weights`
(qgcomp's plot of a noboot fit) and `gcomp` (qgcomp's plot of a boot fit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
import pymc as pm
from matplotlib.figure import Figure
from pydantic import Field, model_validator

from bayesmetal import plots
from bayesmetal import priors as prior_lib
from bayesmetal.arviz_api import InferenceData
from bayesmetal.cohort_schema import Strict
from bayesmetal.design import Design
from bayesmetal.families import (
    FAMILIES,
    add_covariates,
    add_likelihood,
    effect_scale,
    family_priors,
    intercept_prior,
)
from bayesmetal.models.contract import Fit, Fitted, ModelDefinition, Summary, pymc_fit
from bayesmetal.priors import Priors
from bayesmetal.run_schema import ModelSpec
from bayesmetal.summaries.posterior import draws, interval, prob_direction, sd

LABEL = "qgcomp"
COUNT = ("poisson", "negative_binomial")


class QgcompSummaries(Strict):
    """How the posterior is summarised."""

    # posterior draws used for g-computation (all when unset; a random subset, from the
    # run's seed, otherwise)
    gcomp_draws: int | None = Field(default=None, ge=10)


class QgcompSpec(ModelSpec):
    """Quantile g-computation: a GLM in the exposures' quantile scores, psi = joint effect."""

    name: Literal["qgcomp"]
    quantiles: int = Field(default=4, ge=2, le=10)
    degree: Literal[1, 2] = 1  # 2: squared scores, quadratic MSM (qgcomp's degree = 2)
    summaries: QgcompSummaries = QgcompSummaries()

    @model_validator(mode="after")
    def _enough_levels(self) -> QgcompSpec:
        if self.degree == 2 and self.quantiles < 3:
            raise ValueError("degree 2 needs at least 3 quantiles (a quadratic in 2 points)")
        return self

    def quantile_count(self) -> int:
        return self.quantiles


WEAK = {"distribution": "Normal", "mu": 0, "sigma": 2.5}


def default_priors(spec: QgcompSpec, family: str) -> dict[str, dict[str, Any]]:
    """Weakly informative defaults, as the GLM's; `beta2` (squared scores) with degree 2."""
    priors: dict[str, dict[str, Any]] = {
        "intercept": intercept_prior(family),
        "beta": dict(WEAK),
    }
    if spec is not None and spec.degree == 2:
        priors["beta2"] = dict(WEAK)
    return priors | {"gamma": dict(WEAK)} | family_priors(family)


def build_qgcomp(design: Design, spec: QgcompSpec, priors: Priors) -> pm.Model:
    """Declare the conditional model on the design's quantile scores."""
    coords = {"exposure": list(design.exposures), "obs": range(design.n)}
    if design.X.shape[1]:
        coords["covariate"] = list(design.covariate_columns)
    scores = design.quantiles.astype(float)
    with pm.Model(coords=coords) as model:
        q = pm.Data("Q", scores, dims=("obs", "exposure"))
        intercept = prior_lib.create(priors, "intercept")
        beta = prior_lib.create(priors, "beta", dims=("exposure",))
        eta = intercept + pm.math.dot(q, beta)
        pm.Deterministic("psi", beta.sum())
        if spec.degree == 2:
            q2 = pm.Data("Q2", scores**2, dims=("obs", "exposure"))
            beta2 = prior_lib.create(priors, "beta2", dims=("exposure",))
            eta = eta + pm.math.dot(q2, beta2)
            pm.Deterministic("psi_sq", beta2.sum())
        add_likelihood(design, add_covariates(eta, design, priors), priors)
    return model


def fits(design: Design, spec: QgcompSpec, priors: Priors, seed: int) -> list[Fit]:
    """One fit."""
    return [pymc_fit(LABEL, build_qgcomp(design, spec, priors))]


# ---------------------------------------------------------------------------------------------
# g-computation and the marginal structural model


def _inverse_link(family: str):
    if family == "gaussian":
        return lambda eta: eta
    if family == "bernoulli":
        return lambda eta: 1 / (1 + np.exp(-eta))
    return np.exp


def expected_by_quantile(
    intercept: np.ndarray,
    gamma: np.ndarray | None,
    psi: np.ndarray,
    psi_sq: np.ndarray | None,
    X: np.ndarray,
    family: str,
    n_quantiles: int,
    weights: np.ndarray | None = None,
    chunk: int = 250,
) -> np.ndarray:
    """Per draw (rows), the sample-average expected outcome with every exposure set to joint
    quantile k = 0..q-1 (columns): mean over people of g^-1(b0 + X_i gamma + k psi [+ k^2
    psi_sq]), weighted by the survey `weights` when given (the population average). Draws are
    processed in chunks to bound memory (draws x people)."""
    inverse = _inverse_link(family)
    k = np.arange(n_quantiles, dtype=float)
    out = np.empty((len(psi), n_quantiles))
    for start in range(0, len(psi), chunk):
        part = slice(start, start + chunk)
        base = intercept[part, None] + (gamma[part] @ X.T if gamma is not None else 0.0)
        shift = psi[part, None] * k + (psi_sq[part, None] * k**2 if psi_sq is not None else 0.0)
        predicted = inverse(base[:, :, None] + shift[:, None, :])
        person = weights if predicted.shape[1] > 1 else None  # no covariates: one column
        out[part] = np.average(predicted, axis=1, weights=person)
    return out


# MSM link and variance function, as qgcomp's glm MSM fits them (the family's own for the
# conditional model; bernoulli adds the log-binomial 'rr' and a least-squares 'rd')
MSMS = {
    "identity": ("identity", "constant"),
    "log_poisson": ("log", "poisson"),
    "log_binomial": ("log", "binomial"),
    "logit": ("logit", "binomial"),
}


def fit_msm(expected: np.ndarray, degree: int, msm: str, iterations: int = 100) -> np.ndarray:
    """MSM coefficients (intercept, psi1[, psi2]) per row of `expected` (draws x q), fitted
    across k = 0..q-1 by iteratively reweighted least squares with `msm`'s link and variance
    (`MSMS`); the estimating equations of qgcomp's glm on the stacked predictions, which
    depend on the per-k averages alone."""
    link, variance = MSMS[msm]
    n_q = expected.shape[1]
    basis = np.column_stack([np.arange(n_q, dtype=float) ** p for p in range(degree + 1)])
    if link == "identity":
        return np.linalg.lstsq(basis, expected.T, rcond=None)[0].T
    tiny = 1e-12
    clipped = np.clip(expected, tiny, 1 - tiny if variance == "binomial" else np.inf)
    start = np.log(clipped) if link == "log" else np.log(clipped / (1 - clipped))
    coef = np.linalg.lstsq(basis, start.T, rcond=None)[0].T
    for _ in range(iterations):
        eta = coef @ basis.T
        if link == "log":
            mu = np.exp(eta)
            dmu = mu
        else:
            mu = 1 / (1 + np.exp(-eta))
            dmu = mu * (1 - mu)
        if variance == "binomial":
            mu = np.clip(mu, tiny, 1 - tiny)
            var = mu * (1 - mu)
        else:
            var = mu
        dmu = np.maximum(dmu, tiny)
        weight = dmu**2 / var
        working = eta + (expected - mu) / dmu
        weighted = basis.T[None, :, :] * weight[:, None, :]  # (draws, terms, q)
        lhs = weighted @ basis
        rhs = np.einsum("dtq,dq->dt", weighted, working)
        new = np.linalg.solve(lhs, rhs[..., None])[..., 0]
        done = np.max(np.abs(new - coef)) < 1e-10
        coef = new
        if done:
            break
    return coef


def msm_fitted(coef: np.ndarray, n_quantiles: int, msm: str) -> np.ndarray:
    """The MSM's expected outcome at each k, per draw."""
    k = np.arange(n_quantiles, dtype=float)
    eta = sum(coef[:, [p]] * k**p for p in range(coef.shape[1]))
    link = MSMS[msm][0]
    if link == "identity":
        return eta
    return np.exp(eta) if link == "log" else 1 / (1 + np.exp(-eta))


# (row label, MSM, scale, ratio measure) of the marginal effects by family
MARGINAL = {
    "gaussian": [("msm", "identity", "mean difference", None)],
    "poisson": [("msm", "log_poisson", "log rate ratio", "rate ratio")],
    "negative_binomial": [("msm", "log_poisson", "log rate ratio", "rate ratio")],
    "bernoulli": [
        ("msm (rr = TRUE)", "log_binomial", "log risk ratio", "risk ratio"),
        ("msm (rr = FALSE)", "logit", "log odds ratio", "odds ratio"),
        ("msm (risk difference)", "identity", "risk difference", None),
    ],
}
CONDITIONAL_SCALE = {
    "gaussian": "mean difference",
    "bernoulli": "log odds ratio",
    "poisson": "log rate ratio",
    "negative_binomial": "log rate ratio",
}
OUTCOME_MEASURE = {
    "gaussian": "mean outcome",
    "bernoulli": "risk",
    "poisson": "mean count",
    "negative_binomial": "mean count",
}
# the MSM whose fitted curve the gcomp table and figure show
CURVE_MSM = {"gaussian": "identity", "bernoulli": "log_binomial"} | dict.fromkeys(
    COUNT, "log_poisson"
)


# ---------------------------------------------------------------------------------------------
# tables


def _row(
    parameter: str,
    model: str,
    scale: str,
    samples: np.ndarray,
    ci_prob: float,
    plugin: float = np.nan,
    ratio_measure: str | None = None,
) -> dict[str, Any]:
    low, high = interval(samples, ci_prob)
    median = float(np.median(samples))
    row = {
        "parameter": parameter,
        "model": model,
        "scale": scale,
        "mean": float(samples.mean()),
        "median": median,
        "sd": float(sd(samples)),
        "lower": float(low),
        "upper": float(high),
        "prob_direction": float(prob_direction(samples)),
        "plugin": plugin,
        "ratio_measure": ratio_measure or "",
        "ratio": np.exp(median) if ratio_measure else np.nan,
        "ratio_lower": np.exp(low) if ratio_measure else np.nan,
        "ratio_upper": np.exp(high) if ratio_measure else np.nan,
    }
    return row


def qgcomp_weights(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """qgcomp's formula on one coefficient vector (or per row of a matrix of draws): the
    positive and negative weights (0 off their side; beta <= 0 is negative, as qgcomp) and
    pos.psi, neg.psi (sums of the positive / non-positive coefficients)."""
    beta = np.atleast_2d(beta)
    positive = np.where(beta > 0, beta, 0.0)
    negative = np.where(beta <= 0, beta, 0.0)
    pos_psi, neg_psi = positive.sum(axis=1), negative.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        w_pos = np.where(pos_psi[:, None] > 0, positive / pos_psi[:, None], 0.0)
        w_neg = np.where(neg_psi[:, None] < 0, negative / neg_psi[:, None], 0.0)
    return np.abs(w_pos), np.abs(w_neg), pos_psi, neg_psi  # abs: no -0.0 in tables


def weights_table(beta: np.ndarray, exposures: list[str], ci_prob: float) -> pd.DataFrame:
    """Per exposure: beta's posterior, its plug-in side and weight (qgcomp's formula on the
    posterior means), and the per-draw weight on that side (mean, SD, interval) with the
    probability that the exposure is on that side; sorted as qgcomp prints them."""
    mean = beta.mean(axis=0)
    w_pos_hat, w_neg_hat, _, _ = qgcomp_weights(mean)
    w_pos, w_neg, _, _ = qgcomp_weights(beta)
    low, high = interval(beta, ci_prob)
    rows = []
    for j, name in enumerate(exposures):
        positive = mean[j] > 0
        per_draw = w_pos[:, j] if positive else w_neg[:, j]
        w_low, w_high = interval(per_draw, ci_prob)
        rows.append(
            {
                "exposure": name,
                "side": "positive" if positive else "negative",
                "weight": float(w_pos_hat[0, j] if positive else w_neg_hat[0, j]),
                "weight_mean": float(per_draw.mean()),
                "weight_sd": float(sd(per_draw)),
                "weight_lower": float(w_low),
                "weight_upper": float(w_high),
                "prob_side": float(
                    (beta[:, j] > 0).mean() if positive else (beta[:, j] <= 0).mean()
                ),
                "beta_mean": float(mean[j]),
                "beta_sd": float(sd(beta[:, j])),
                "beta_lower": float(low[j]),
                "beta_upper": float(high[j]),
            }
        )
    table = pd.DataFrame(rows)
    table["order"] = (table["side"] == "negative").astype(int)
    table = table.sort_values(["order", "weight"], ascending=[True, False]).drop(columns="order")
    table["ci_prob"] = ci_prob
    return table.reset_index(drop=True)


def _draw_subset(total: int, wanted: int | None, seed: int) -> np.ndarray:
    if wanted is None or wanted >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, wanted, replace=False))


def gcomp_draws(
    idata: InferenceData, design: Design, spec: QgcompSpec, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(draw indices used, expected outcome per draw and joint quantile k)."""
    beta = draws(idata, "beta")
    chosen = _draw_subset(len(beta), spec.summaries.gcomp_draws, seed)
    gamma = draws(idata, "gamma")[chosen] if design.X.shape[1] else None
    psi_sq = draws(idata, "beta2")[chosen].sum(axis=1) if spec.degree == 2 else None
    expected = expected_by_quantile(
        draws(idata, "intercept")[chosen],
        gamma,
        beta[chosen].sum(axis=1),
        psi_sq,
        design.X,
        design.family,
        design.n_quantiles,
        design.likelihood_weights,
    )
    return chosen, expected


def psi_table(
    idata: InferenceData,
    expected: np.ndarray,
    design: Design,
    spec: QgcompSpec,
    ci_prob: float,
) -> pd.DataFrame:
    """Conditional psi (and psi_sq), partial effects (degree 1) and the MSM's psi1[, psi2]."""
    family = design.family
    scale = effect_scale(family)
    ratio = scale.measure if scale.ratio else None
    conditional = CONDITIONAL_SCALE[family]
    beta = draws(idata, "beta")
    rows = []
    if spec.degree == 1:
        rows.append(
            _row(
                "psi",
                "conditional",
                conditional,
                beta.sum(axis=1),
                ci_prob,
                beta.mean(0).sum(),
                ratio,
            )
        )
        _, _, pos_hat, neg_hat = qgcomp_weights(beta.mean(axis=0))
        _, _, pos_psi, neg_psi = qgcomp_weights(beta)
        for name, samples, plugin in (("pos.psi", pos_psi, pos_hat), ("neg.psi", neg_psi, neg_hat)):
            partial = _row(name, "per draw", conditional, samples, ci_prob, float(plugin[0]))
            partial["prob_direction"] = np.nan  # signed by construction: no evidence of direction
            rows.append(partial)
    else:
        beta2 = draws(idata, "beta2")
        rows.append(_row("psi1", "conditional", conditional, beta.sum(axis=1), ci_prob))
        rows.append(_row("psi2", "conditional", conditional, beta2.sum(axis=1), ci_prob))
    if family == "bernoulli" or spec.degree == 2:
        for model, msm, msm_scale, msm_ratio in MARGINAL[family]:
            coef = fit_msm(expected, spec.degree, msm)
            names = ["psi"] if spec.degree == 1 else ["psi1", "psi2"]
            if spec.degree == 2:  # exp of a polynomial coefficient is no ratio per quantile
                msm_ratio = None
            for p, name in enumerate(names, start=1):
                rows.append(
                    _row(name, model, msm_scale, coef[:, p], ci_prob, ratio_measure=msm_ratio)
                )
    table = pd.DataFrame(rows)
    table["ci_prob"] = ci_prob
    return table


def gcomp_table(
    expected: np.ndarray, design: Design, spec: QgcompSpec, ci_prob: float
) -> pd.DataFrame:
    """Expected outcome at each joint quantile k (g-computation), and the MSM's fit there."""
    msm = CURVE_MSM[design.family]
    fitted = msm_fitted(fit_msm(expected, spec.degree, msm), design.n_quantiles, msm)
    low, high = interval(expected, ci_prob)
    return pd.DataFrame(
        {
            "k": np.arange(design.n_quantiles),
            "measure": OUTCOME_MEASURE[design.family],
            "mean": expected.mean(axis=0),
            "median": np.median(expected, axis=0),
            "sd": sd(expected),
            "lower": low,
            "upper": high,
            "msm_mean": fitted.mean(axis=0),
            "msm": msm,
            "ci_prob": ci_prob,
        }
    )


# ---------------------------------------------------------------------------------------------
# figures


def weights_figure(
    weights: pd.DataFrame,
    psi: pd.DataFrame,
    title: str = "",
    *,
    colours: Mapping[str, str] | None = None,
) -> Figure:
    """qgcomp's weights plot: negative and positive weights side by side, bars the plug-in
    weights in each exposure's colour (`colours`, the run's `plots.exposure_colours`), points
    and lines the per-draw posterior mean and interval; each panel's title gives its partial
    sum (plug-in)."""
    plugin = psi.set_index("parameter")["plugin"]
    palette = colours or plots.exposure_colours(list(weights["exposure"]))
    fig = Figure(figsize=(9, 0.9 + 0.45 * max(len(weights), 2)))
    axes = fig.subplots(1, 2, sharex=True)
    rows = max(weights["side"].value_counts().max() if len(weights) else 1, 2)
    for ax, side, label in zip(axes, ("negative", "positive"), ("neg.psi", "pos.psi"), strict=True):
        part = weights[weights["side"] == side].sort_values("weight")
        y = np.arange(len(part))
        bar_colours = [palette.get(e, "grey") for e in part["exposure"]]
        ax.barh(y, part["weight"], color=bar_colours, alpha=0.75, label="plug-in")
        if len(part):
            mean = part["weight_mean"].to_numpy()
            err = [
                np.clip(mean - part["weight_lower"].to_numpy(), 0, None),
                np.clip(part["weight_upper"].to_numpy() - mean, 0, None),
            ]
            ax.errorbar(
                mean, y, xerr=err, fmt="o", color="black", ms=4, capsize=3, label="per draw"
            )
            ax.set_yticks(y, part["exposure"])
            ax.legend(fontsize=8, loc="best")
        else:
            ax.set_yticks([])
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlim(0, 1.05)
        ax.set_ylim(-0.6, rows - 0.4)  # one row height in both panels
        ax.set_xlabel("weight")
        ax.set_title(f"{side}: {label} = {plugin.get(label, np.nan):.3g}", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def gcomp_figure(
    table: pd.DataFrame,
    outcome: str,
    title: str = "",
    *,
    units: Mapping[str, str] | None = None,
) -> Figure:
    """Expected outcome against the joint quantile k with its band, and the MSM's fit; the y
    axis names the outcome's unit (`units`) where it has one (not for a risk)."""
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    k = table["k"].to_numpy()
    prob = table["ci_prob"].iloc[0]
    ax.fill_between(
        k,
        table["lower"],
        table["upper"],
        color="steelblue",
        alpha=0.3,
        label=f"{prob:.0%} interval",
    )
    ax.plot(k, table["mean"], "o-", color="steelblue", label="g-computation (posterior mean)")
    ax.plot(k, table["msm_mean"], "--", color="black", label=f"MSM ({table['msm'].iloc[0]})")
    ax.set_xticks(k, [f"{v}" for v in k])
    ax.set_xlabel("joint quantile k (every exposure set to quantile k)")
    measure = table["measure"].iloc[0]
    named = (
        outcome if measure == OUTCOME_MEASURE["bernoulli"] else plots.outcome_label(outcome, units)
    )
    ax.set_ylabel(f"{measure} of {named}")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def summarise(fitted: Fitted, spec: QgcompSpec) -> Summary:
    """Tables psi, weights (degree 1) and gcomp; figures weights (degree 1) and gcomp."""
    idata, design, prob = fitted.idatas[LABEL], fitted.design, fitted.settings.ci_prob
    _, expected = gcomp_draws(idata, design, spec, fitted.seed)
    psi = psi_table(idata, expected, design, spec, prob)
    curve = gcomp_table(expected, design, spec, prob)
    title = f"{design.outcome} (qgcomp)"
    tables = {"psi": psi, "gcomp": curve}
    figures = {"gcomp": gcomp_figure(curve, design.outcome, title, units=design.units)}
    if spec.degree == 1:
        exposures = [str(e) for e in idata.posterior["beta"].coords["exposure"].to_numpy()]
        tables["weights"] = weights_table(draws(idata, "beta"), exposures, prob)
        colours = plots.exposure_colours(design.exposures)
        figures["weights"] = weights_figure(tables["weights"], psi, title, colours=colours)
    return Summary(tables, figures, headline=("psi", "weights", "gcomp"))


MODEL = ModelDefinition(
    name="qgcomp",
    spec=QgcompSpec,
    families=FAMILIES,
    default_priors=default_priors,
    fits=fits,
    summarise=summarise,
)
