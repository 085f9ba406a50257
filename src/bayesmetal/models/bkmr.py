"""BKMR (Bobb et al. 2015; R: kmbayes) as a registered model.

y = h(z) + X beta + e, e ~ N(0, sigma2), h ~ GP(0, tau K), K(z, z') = exp(-sum_m r_m
(z_m - z'_m)^2), lambda = tau / sigma2. With h integrated out, y ~ N(X beta, sigma2 (I +
lambda K)). Component-wise selection: r_m = delta_m rho_m, delta_m ~ Bernoulli(pi). Binary
outcomes use the probit model. As in R's kmbayes there is no intercept: h carries the level.

`build_bkmr` declares the exact model, which PyMC samples with its compound step (NUTS +
BinaryGibbsMetropolis); the default engine is the fast collapsed Gibbs sampler
(`bayesmetal.bkmr.engine`) on the same model and priors. Both return the posterior contract
of `bayesmetal.bkmr.posterior`.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pydantic import Field, model_validator

from bayesmetal import plots
from bayesmetal import priors as prior_lib
from bayesmetal.arviz_api import InferenceData, stored_data
from bayesmetal.bkmr import posterior as contract
from bayesmetal.bkmr import priors as bkmr_priors
from bayesmetal.bkmr.engine import NAME as GIBBS
from bayesmetal.bkmr.engine import GibbsProblem
from bayesmetal.bkmr.kernel import choose_knots
from bayesmetal.bkmr.posterior import H_JITTER
from bayesmetal.bkmr.sampler import LOG_BOUND, BkmrData
from bayesmetal.cohort_schema import Strict
from bayesmetal.design import Design
from bayesmetal.engines import PYMC
from bayesmetal.errors import ConfigError
from bayesmetal.models.contract import Fit, Fitted, ModelDefinition, Summary
from bayesmetal.priors import Priors
from bayesmetal.run_schema import ModelSpec
from bayesmetal.summaries import bkmr as bkmr_summary
from bayesmetal.survey_adjust import with_adjusted
from bayesmetal.survey_design import SurveyWeights

JACKKNIFE = "Bayesian infinitesimal jackknife over PSUs (beta and the h summaries)"


class BkmrEngine(Strict):
    """How BKMR is sampled: the fast collapsed Gibbs sampler, or PyMC's compound step on the
    exact declaration (the reference, for small n)."""

    sampler: Literal["gibbs", "pymc"] = "gibbs"


class BkmrSummaries(Strict):
    """How h is summarised."""

    draws_for_h: int = Field(default=200, ge=10)  # posterior draws used for h summaries
    # with a survey design, instead: the draws the design adjustment estimates from
    draws_for_design: int = Field(default=2000, ge=100)
    ngrid: int = Field(default=30, ge=5, le=200)  # grid points of exposure-response curves


class BkmrSpec(ModelSpec):
    """BKMR: y = h(z) + X beta + e, h a Gaussian process, spike-and-slab selection of r_m."""

    name: Literal["bkmr"]
    selection: Literal["component", "hierarchical", "none"] = "component"
    groups: dict[str, list[str]] | None = None  # hierarchical: group name -> exposures
    knots: int | None = Field(default=None, ge=5)  # Gaussian predictive process for large n
    random_intercept: str | None = None  # column whose levels share a random intercept
    engine: BkmrEngine = BkmrEngine()
    summaries: BkmrSummaries = BkmrSummaries()

    @model_validator(mode="after")
    def _compatible(self) -> BkmrSpec:
        if (self.selection == "hierarchical") != (self.groups is not None):
            raise ValueError("'groups' goes with selection: hierarchical, and it needs them")
        if self.engine.sampler == "pymc" and self.knots is not None:
            raise ValueError("knots need engine.sampler: gibbs (the PyMC reference is exact)")
        return self

    def group_column(self) -> tuple[str, str] | None:
        return ("model.random_intercept", self.random_intercept) if self.random_intercept else None


def default_priors(spec: BkmrSpec, family: str) -> dict[str, dict[str, Any]]:
    """R bkmr's defaults (see bayesmetal.bkmr.priors). Binary outcomes use the probit model,
    whose latent residual variance is fixed at 1, so they have no sigma_sq prior. A random
    intercept adds lambda_ri = its variance / sigma2, with lambda's prior as in R."""
    priors = {key: dict(value) for key, value in bkmr_priors.DEFAULT_PRIORS.items()}
    if family == "bernoulli":
        del priors[contract.SIGMA_SQ]
    if spec.random_intercept:
        priors[contract.LAMBDA_RI] = dict(bkmr_priors.DEFAULT_PRIORS[contract.LAMBDA])
    return priors


def check_priors(spec: BkmrSpec, priors: Priors) -> None:
    """The Gibbs engine reads conjugate parameters and fixed, plain log-densities, and covers
    a bounded range of lambda and r: priors it cannot honour are refused at load."""
    if spec.engine.sampler != "gibbs":
        return
    for key, prior in priors.items():
        bkmr_priors.dist(prior, key)
    bkmr_priors.check_conjugate(priors, probit=contract.SIGMA_SQ not in priors)
    bkmr_priors.check_support(priors, LOG_BOUND)


def posterior_contract(design: Design, spec: BkmrSpec) -> dict[str, tuple[str, ...]]:
    """This fit's variables and dims (`bayesmetal.bkmr.posterior`)."""
    return contract.variables(
        has_covariates=bool(design.X.shape[1]),
        probit=design.family == "bernoulli",
        selection=spec.selection != "none",
        random_intercept=spec.random_intercept is not None,
        engine=GIBBS if spec.engine.sampler == "gibbs" else PYMC,
    )


def check_survey(spec: BkmrSpec, family: str) -> None:
    """A survey run, as a config asks for it: within the model's `survey_limits`, and with
    knots, since the design adjustment draws h at every person with each of
    draws_for_design draws for every summary (with the exact kernel an n x n factorisation
    each time: hours at NHANES sizes)."""
    survey_limits(spec, family)
    if spec.knots is None:
        raise ConfigError(
            "survey needs model.knots (e.g. 100): the design adjustment draws h at every "
            "person for each of its draws and summaries, which the exact kernel makes an "
            "n x n factorisation every time"
        )


def survey_limits(spec: BkmrSpec, family: str) -> None:
    """What BKMR cannot do with survey weights: the probit model (its latent-variable Gibbs
    updates have no weighted form: a likelihood raised to a power w is not a probit), and
    random intercepts (a multilevel pseudo-likelihood needs weights at each level, which
    NHANES does not publish)."""
    if family == "bernoulli":
        raise ConfigError(
            "survey: the probit BKMR (binary outcome) has no weighted pseudo-likelihood; "
            "set survey: false, or use glm, bwqs or qgcomp for a binary outcome"
        )
    if spec.random_intercept:
        raise ConfigError(
            "survey with model.random_intercept: a multilevel pseudo-likelihood needs "
            "weights at each level, which NHANES does not publish; drop one of them"
        )


def knots_for(design: Design, spec: BkmrSpec, seed: int) -> np.ndarray | None:
    """The knot locations (standardised exposure space) when the model uses knots."""
    return None if spec.knots is None else choose_knots(design.z, spec.knots, seed)


def fits(design: Design, spec: BkmrSpec, priors: Priors, seed: int) -> list[Fit]:
    """One fit: the declaration, and for the Gibbs engine the data it reads (knots chosen
    from the run's seed, stored with the posterior for the summaries)."""
    if design.survey is not None:
        survey_limits(spec, design.family)
    knots = knots_for(design, spec, seed)
    data = BkmrData(
        y=design.y,
        X=design.X,
        z=design.z,
        knots=knots,
        selection=spec.selection != "none",
        groups=group_index(design, spec),
        probit=design.family == "bernoulli",
        random_intercept=design.group if spec.random_intercept else None,
        weights=design.likelihood_weights,
    )
    coords = {
        "exposure": list(design.exposures),
        "coef": list(design.covariate_columns),
        "obs": list(range(design.n)),
    }
    gibbs = spec.engine.sampler == "gibbs"
    return [
        Fit(
            label="bkmr",
            build=lambda: build_bkmr(design, spec, priors),
            posterior=posterior_contract(design, spec),
            engine=GIBBS if gibbs else PYMC,
            problem=GibbsProblem(data, priors, coords) if gibbs else None,
            constant_data={} if knots is None else {"knots": (("knot", "exposure"), knots)},
            adjust=partial(adjust_to_design, design, spec, knots),
        )
    ]


def build_bkmr(design: Design, spec: BkmrSpec, priors: Priors) -> pm.Model:
    """Declare the exact BKMR model with h integrated out."""
    coords = {
        "exposure": list(design.exposures),
        "coef": list(design.covariate_columns),
        "obs": range(design.n),
    }
    z = design.z
    sq_dist = (z[:, None, :] - z[None, :, :]) ** 2  # (n, n, M): fine at reference sizes
    with pm.Model(coords=coords) as model:
        mean = 0.0
        if design.X.shape[1]:
            x = pm.Data("X", design.X, dims=("obs", "coef"))
            beta = prior_lib.create(priors, "beta", dims=("coef",))
            mean = pt.dot(x, beta)
        lam = prior_lib.create(priors, "lambda")
        if spec.selection == "component":
            pi = prior_lib.create(priors, "pi")
            delta = pm.Bernoulli("delta", p=pi, dims="exposure")
            rho = prior_lib.create(priors, "r", name="rho", dims=("exposure",))
            r = pm.Deterministic("r", delta * rho, dims="exposure")
        elif spec.selection == "hierarchical":
            pi = prior_lib.create(priors, "pi")
            groups = group_index(design, spec)
            parts = []
            for g, name in enumerate(spec.groups):
                members = np.flatnonzero(groups == g)
                included = pm.Bernoulli(f"group_in_{name}", p=pi)
                chosen = pm.Categorical(f"choice_{name}", p=np.full(members.size, 1 / members.size))
                parts.append((members, included * pt.eq(chosen, np.arange(members.size))))
            order = np.concatenate([members for members, _ in parts])
            stacked = pt.concatenate([values for _, values in parts])[np.argsort(order)]
            delta = pm.Deterministic("delta", stacked, dims="exposure")
            rho = prior_lib.create(priors, "r", name="rho", dims=("exposure",))
            r = pm.Deterministic("r", delta * rho, dims="exposure")
        else:
            r = prior_lib.create(priors, "r", dims=("exposure",))
        kernel = pt.exp(-pt.tensordot(pt.as_tensor(sq_dist), r, axes=[[2], [0]]))
        if spec.random_intercept:  # u ~ N(0, lambda_ri sigma2): adds lambda_ri Z Z' to K
            onehot = (design.group[:, None] == np.arange(len(design.group_levels))) * 1.0
            lam_ri = prior_lib.create(priors, "lambda_ri")
            kernel = kernel + lam_ri / lam * pt.as_tensor(onehot @ onehot.T)
        if design.family == "bernoulli":  # probit: h explicit, P(y = 1) = Phi(X beta + h)
            # non-centred, h = L eta: the centred MvNormal left NUTS a step size of ~5e-4 and
            # the delta flips stuck (h fixed, switching r_m changes h's prior density hugely)
            eta = pm.Normal("h_eta", 0.0, 1.0, dims="obs")
            chol = pt.linalg.cholesky(lam * kernel + H_JITTER * pt.eye(design.n))
            h = pm.Deterministic("h", chol @ eta, dims="obs")
            pm.Bernoulli("y", p=pm.math.invprobit(mean + h), observed=design.y, dims="obs")
        else:
            sigma_sq = prior_lib.create(priors, "sigma_sq")
            # survey weights w (normalised to sum to n): the weighted pseudo-likelihood,
            # prod N(y_i; ., sigma2)^w_i, is N(y; ., sigma2 (diag(1 / w) + lambda K)) up to a
            # constant (bkmr.kernel's docstring)
            weights = design.likelihood_weights
            noise = pt.eye(design.n) if weights is None else pt.diag(1.0 / weights)
            cov = sigma_sq * (noise + lam * kernel)
            extra = 0.0 if weights is None else float(weights.sum()) - design.n
            if abs(extra) > 1e-9:  # sigma^-(sum w), where the MvNormal carries sigma^-n
                pm.Potential("weights_count", -0.5 * extra * pt.log(sigma_sq))
            pm.MvNormal("y", mu=mean * pt.ones(design.n), cov=cov, observed=design.y, dims="obs")
    return model


def summary_posterior(
    idata: InferenceData, design: Design, spec: BkmrSpec, knots: np.ndarray | None, seed: int
) -> bkmr_summary.HPosterior:
    """The draws the h summaries use: `draws_for_h`, or `draws_for_design` under a survey
    design (the jackknife's covariances need many)."""
    n_draws = spec.summaries.draws_for_h
    if design.survey is not None:
        n_draws = spec.summaries.draws_for_design
    return bkmr_summary.h_posterior(idata, design, n_draws, knots, seed)


def adjust_to_design(
    design: Design,
    spec: BkmrSpec,
    knots: np.ndarray | None,
    idata: InferenceData,
    survey: SurveyWeights,
    seed: int,
) -> InferenceData:
    """beta's draws rescaled to their design-based variance by the infinitesimal jackknife
    (`survey_influence`, from `draws_for_design` draws and h at the data drawn with them),
    with t tails on the design df when the design asks for them; the other parameters are
    left as the pseudo-posterior has them (the h summaries are adjusted when summarised)."""
    start = time.perf_counter()
    posterior = idata.posterior
    if contract.BETA not in posterior:
        return with_adjusted(idata, posterior.copy(), survey, JACKKNIFE, start)
    post = summary_posterior(idata, design, spec, knots, seed)
    h = bkmr_summary.sample_h_new(post, np.empty((0, design.z.shape[1])), seed)
    beta = posterior[contract.BETA]
    adjusted, _, unseen = h.design(post.beta, beta.to_numpy())
    method = JACKKNIFE
    if unseen.any():  # said in the report's header, as the h summaries say it in their notes
        names = ", ".join(str(c) for c in beta.coords["coef"].to_numpy()[unseen])
        method += f"; not adjusted, design variance not estimable from these draws: {names}"
    posterior = posterior.assign({contract.BETA: beta.copy(data=adjusted)})
    return with_adjusted(idata, posterior, survey, method, start)


def group_index(design: Design, spec: BkmrSpec) -> np.ndarray | None:
    """Group number of each exposure for hierarchical selection; groups must partition them."""
    if spec.selection != "hierarchical":
        return None
    owner: dict[str, int] = {}
    for g, (name, members) in enumerate(spec.groups.items()):
        for exposure in members:
            if exposure not in design.exposures:
                raise ConfigError(
                    f"model.groups.{name}: {exposure!r} is not an exposure "
                    f"of the analysis ({', '.join(design.exposures)})"
                )
            if exposure in owner:
                raise ConfigError(f"model.groups: {exposure!r} is in two groups")
            owner[exposure] = g
    missing = [e for e in design.exposures if e not in owner]
    if missing:
        raise ConfigError(f"model.groups: exposures {missing} are in no group")
    return np.array([owner[e] for e in design.exposures])


def summarise(fitted: Fitted, spec: BkmrSpec) -> Summary:
    """PIPs, exposure-response curves and risk summaries (R's bkmr functions), with figures."""
    idata, design = fitted.idatas["bkmr"], fitted.design
    prob, seed = fitted.settings.ci_prob, fitted.seed
    knots = stored_data(idata, "constant_data").get("knots")  # those the chains used
    post = summary_posterior(idata, design, spec, knots, seed)
    ngrid = spec.summaries.ngrid
    out = Summary(headline=("pips", "overall_risk", "univariate"))
    tables = out.tables
    colours = plots.exposure_colours(design.exposures)
    if spec.selection != "none":
        tables["pips"] = bkmr_summary.pips(idata, spec.groups)
        out.figures["pips"] = plots.pip_bars(tables["pips"], colours=colours)
        ranked = tables["pips"].sort_values("pip", ascending=False)["variable"].tolist()
    else:
        ranked = list(design.exposures)
    if spec.groups:
        tables["group_risk"] = bkmr_summary.group_risk(post, spec.groups, seed=seed, prob=prob)
    tables["univariate"] = bkmr_summary.with_concentration(
        bkmr_summary.pred_resp_univar(post, ngrid, seed=seed, prob=prob), design
    )
    tables["overall_risk"] = bkmr_summary.overall_risk(post, seed=seed, prob=prob)
    tables["single_var_risk"] = bkmr_summary.single_var_risk(post, seed=seed, prob=prob)
    tables["single_var_interaction"] = bkmr_summary.single_var_interaction(
        post, seed=seed, prob=prob
    )
    pairs = [(a, b) for a in ranked[:3] for b in ranked[:3] if a != b]
    tables["bivariate_levels"] = bkmr_summary.with_concentration(
        bkmr_summary.pred_resp_bivar_levels(post, pairs, ngrid, seed=seed, prob=prob),
        design,
        variable="variable1",
        z="z1",
        column="concentration1",
    )
    # effect axes span at least MIN_SPAN_SD outcome SDs (the probit scale's latent SD is 1)
    probit = design.family == "bernoulli"
    axes = {
        "outcome": design.outcome,
        "units": design.units,
        "min_half_span": plots.MIN_SPAN_SD * (1.0 if probit else float(np.std(design.y))),
        "scale": "probit" if probit else "",
    }
    curves = {
        "concentrations": dict(zip(design.exposures, design.concentrations.T, strict=True)),
        "colours": colours,
    }
    pips = tables.get("pips")
    pip_of = None if pips is None else dict(zip(pips["variable"], pips["pip"], strict=True))
    out.figures["univariate"] = plots.univariate_panel(
        tables["univariate"], **axes, **curves, pips=pip_of
    )
    out.figures["bivariate_levels"] = plots.bivariate_levels(
        tables["bivariate_levels"], **axes, **curves
    )
    out.figures["overall_risk"] = plots.risk_plot(
        tables["overall_risk"], "quantile", "overall risk vs all at median", **axes
    )
    out.figures["single_var_risk"] = plots.single_var_risk_plot(
        tables["single_var_risk"], **axes, colours=colours
    )
    return out


MODEL = ModelDefinition(
    "bkmr",
    BkmrSpec,
    ("gaussian", "bernoulli"),
    default_priors,
    fits,
    summarise,
    check_priors,
    check_survey,
)
