"""Design-based adjustment of a survey-weighted pseudo-posterior (Williams & Savitsky 2021).

A model fitted with the weighted pseudo-likelihood (`families.add_likelihood` with survey
weights) has a posterior centred on the design-consistent estimate, but its spread is that of
an i.i.d. sample: too narrow when persons in a PSU are alike, wrong when weights vary. The
adjustment maps every draw theta (on PyMC's unconstrained scale) to

    theta_hat + R2^-1 R1 (theta - theta_hat),   R2'R2 = H^-1,   R1'R1 = H^-1 J H^-1,

where theta_hat is the posterior mean, H the negative Hessian of the log pseudo-posterior at
theta_hat, and J the design-based covariance of the total of the persons' weighted scores
(Taylor linearisation with strata and PSUs, the analysis sample as a domain). The adjusted
draws have the sandwich covariance H^-1 J H^-1 of a design-based (svyglm-like) estimator. The
same steps as R's csSampling::cs_sampling, which uses replicate weights for J; square roots are
symmetric eigen-roots, so a design with fewer degrees of freedom than parameters (a singular J)
still gives draws rather than failing. H and the scores are central differences of PyMC's
compiled gradient and pointwise pseudo-likelihood (exact symbolic second derivatives took
seconds to compile for each fit). Constrained parameters and deterministics are recomputed
from the adjusted draws through the model's own transforms.

With `intervals: t` (the default of a config's survey block) each adjusted draw's deviation
from theta_hat is also multiplied by sqrt(df / u), u ~ chi-square(df), df = PSUs - strata:
draws that were N(theta_hat, V) become multivariate t_df(theta_hat, V), so equal-tailed
intervals are theta_hat +- t_df SE, the design-based interval of Stata's svy and NHANES's
analytic guidelines. J is estimated from df PSU contrasts; on one NHANES cycle df is 15, where
t_df's 97.5% point (2.13) is 9% beyond the normal's (1.96).
"""

from __future__ import annotations

import time

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayesmetal.arviz_api import InferenceData, restored, with_group
from bayesmetal.errors import ConfigError
from bayesmetal.families import WEIGHTED_LIKELIHOOD
from bayesmetal.survey_design import SurveyWeights

FAST = {"mode": "FAST_COMPILE"}  # functions run once: compiling C code would cost more
UNADJUSTED = "pseudo_posterior"  # the idata group keeping the draws before the adjustment
T_STREAM = 7  # the t multipliers' random stream: default_rng([seed, T_STREAM])


def unconstrained_draws(model: pm.Model, posterior: xr.Dataset) -> np.ndarray:
    """Every draw as one row of the model's unconstrained parameter vector (value_vars order)."""
    columns = []
    for rv in model.free_RVs:
        draws = posterior[rv.name].to_numpy()
        flat = draws.reshape(-1, *draws.shape[2:])
        transform = model.rvs_to_transforms[rv]
        if transform is not None:
            flat = transform.forward(pt.as_tensor(flat), *rv.owner.inputs).eval()
        columns.append(flat.reshape(len(flat), -1))
    return np.hstack(columns)


def _point(model: pm.Model, vector: np.ndarray) -> dict[str, np.ndarray]:
    """The unconstrained parameter vector as PyMC's {value var name: array} point."""
    point, start = {}, 0
    for var, value in model.initial_point().items():
        size = int(np.size(value))
        point[var] = vector[start : start + size].reshape(np.shape(value)).astype(value.dtype)
        start += size
    return point


def _symmetric_root(matrix: np.ndarray) -> np.ndarray:
    """S with S S = matrix, for a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _central_differences(function, centre: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """d function / d centre by central differences: one column (or trailing axis) per
    coordinate, with a step relative to the coordinate's size."""
    columns = []
    for k in range(len(centre)):
        shift = np.zeros_like(centre)
        shift[k] = step * max(1.0, abs(centre[k]))
        columns.append((function(centre + shift) - function(centre - shift)) / (2 * shift[k]))
    return np.stack(columns, axis=-1)


def person_scores(model: pm.Model, centre: np.ndarray) -> np.ndarray:
    """Each person's weighted score (gradient of weight x log-density) at `centre`, one row a
    person, by central differences of the pointwise pseudo-likelihood: 2p evaluations of one
    cheap function, where PyTensor's exact per-person Jacobian took seconds to compile
    (tests compare the two)."""
    pointwise = model.replace_rvs_by_values([model[WEIGHTED_LIKELIHOOD]])[0]
    function = model.compile_fn(pointwise, inputs=model.value_vars, point_fn=True, **FAST)
    return _central_differences(lambda x: function(_point(model, x)), centre)


def sandwich(model: pm.Model, centre: np.ndarray, survey: SurveyWeights) -> dict[str, np.ndarray]:
    """H^-1 (inverse negative Hessian of the log pseudo-posterior) and the design-based
    sandwich H^-1 J H^-1, both at `centre` (an unconstrained parameter vector)."""
    if WEIGHTED_LIKELIHOOD not in model.named_vars:
        raise ConfigError(
            f"the model has no {WEIGHTED_LIKELIHOOD!r} pseudo-likelihood: it was not declared "
            "with survey weights"
        )
    gradient = model.compile_fn(model.dlogp(), inputs=model.value_vars, point_fn=True, **FAST)
    hessian = -_central_differences(lambda x: gradient(_point(model, x)), centre)
    hessian = (hessian + hessian.T) / 2
    scores = person_scores(model, centre)
    inverse_hessian = np.linalg.inv(hessian)
    design = survey.total_covariance(scores)
    return {
        "inverse_hessian": inverse_hessian,
        "sandwich": inverse_hessian @ design @ inverse_hessian,
    }


def constrained(model: pm.Model, draws: np.ndarray, like: xr.Dataset) -> xr.Dataset:
    """Free variables (constrained) and deterministics recomputed from unconstrained draws,
    with the dims and coords of the posterior `like`."""
    shape = (like.sizes["chain"], like.sizes["draw"])
    data, start = {}, 0
    for rv in model.free_RVs:
        dims = like[rv.name].dims
        size = int(np.prod(model.initial_point()[model.rvs_to_values[rv].name].shape))
        flat = draws[:, start : start + size]
        start += size
        transform = model.rvs_to_transforms[rv]
        if transform is not None:
            flat = transform.backward(pt.as_tensor(flat), *rv.owner.inputs).eval()
        data[rv.name] = (dims, np.reshape(flat, (*shape, *like[rv.name].shape[2:])))
    free = xr.Dataset(data, coords=like.coords)
    names = [d.name for d in model.deterministics]
    if names:
        free = pm.compute_deterministics(
            free, model=model, merge_dataset=True, progressbar=False, compile_kwargs=FAST
        )
    return free.assign_attrs(like.attrs)


def unadjusted(idata: InferenceData) -> InferenceData:
    """The idata as sampled: a design-adjusted one's pseudo-posterior back as its posterior
    (what continuing its chains must start from); others unchanged."""
    if UNADJUSTED not in idata.groups():
        return idata
    return restored(idata, "posterior", UNADJUSTED)


def t_scales(draws: int, df: int | None, seed: int) -> np.ndarray:
    """Per-draw multipliers sqrt(df / u), u ~ chi-square(df), turning normal deviations into
    t_df ones; ones when df is None (normal intervals). The stream is (seed, T_STREAM), apart
    from the integer seeds the samplers draw from."""
    if df is None:
        return np.ones(draws)
    return np.sqrt(df / np.random.default_rng([seed, T_STREAM]).chisquare(df, draws))


def adjust(
    model: pm.Model, idata: InferenceData, survey: SurveyWeights, seed: int = 0
) -> InferenceData:
    """The idata with its posterior replaced by the design-adjusted draws (t tails on the
    design df when `survey.intervals` is 't', from `seed`); the pseudo-posterior is kept in
    the group `pseudo_posterior`, and the design in the posterior's attrs."""
    start = time.perf_counter()
    draws = unconstrained_draws(model, idata.posterior)
    centre = draws.mean(axis=0)
    matrices = sandwich(model, centre, survey)
    mapping = np.linalg.solve(
        _symmetric_root(matrices["inverse_hessian"]), _symmetric_root(matrices["sandwich"])
    )
    scales = t_scales(len(draws), survey.t_df, seed)
    adjusted = centre + ((draws - centre) @ mapping) * scales[:, None]
    posterior = constrained(model, adjusted, idata.posterior)
    method = "Williams-Savitsky sandwich, Taylor linearisation"
    return with_adjusted(idata, posterior, survey, method, start)


def with_adjusted(
    idata: InferenceData, posterior: xr.Dataset, survey: SurveyWeights, method: str, start: float
) -> InferenceData:
    """The idata with the design-adjusted `posterior` in place of its own, which is kept in
    the group `pseudo_posterior`; the design, the adjustment's `method` and its intervals in
    the posterior's attrs, and the seconds since `start` (perf_counter) in the idata's."""
    posterior.attrs["survey_design"] = survey.label
    posterior.attrs["survey_adjustment"] = method
    posterior.attrs["survey_intervals"] = (
        "normal" if survey.t_df is None else f"t on {survey.t_df} design df"
    )
    adjusted = with_group(idata, "posterior", posterior, keep_as=UNADJUSTED)
    adjusted.attrs["survey_adjustment_s"] = time.perf_counter() - start
    return adjusted
