"""The sampling engines by name. Each takes a declared `Fit` and the sampler settings and
returns InferenceData holding the fit's posterior contract: PyMC's samplers (NUTS, or its
compound step with discrete variables) on the fit's model, or BKMR's Gibbs engine."""

from __future__ import annotations

from collections.abc import Callable

from bayesmetal import sampling, survey_adjust
from bayesmetal.arviz_api import InferenceData
from bayesmetal.bkmr import engine as bkmr_engine
from bayesmetal.errors import ConfigError
from bayesmetal.models.contract import Fit
from bayesmetal.run_schema import SamplerSpec
from bayesmetal.survey_design import SurveyWeights

PYMC = "pymc"


def _pymc(fit: Fit, sampler: SamplerSpec, seed_offset: int) -> InferenceData:
    return sampling.sample(fit.build(), sampler, seed_offset)


ENGINES: dict[str, Callable[[Fit, SamplerSpec, int], InferenceData]] = {
    PYMC: _pymc,
    bkmr_engine.NAME: bkmr_engine.sample,
}
EXTENDERS: dict[str, Callable[[Fit, InferenceData, SamplerSpec], InferenceData]] = {
    bkmr_engine.NAME: bkmr_engine.extend,
}


def sample(fit: Fit, sampler: SamplerSpec, seed_offset: int = 0) -> InferenceData:
    """The fit's posterior from its engine (seed + seed_offset for the i-th fit of a run)."""
    return ENGINES[fit.engine](fit, sampler, seed_offset)


def survey_adjusted(
    fit: Fit, idata: InferenceData, survey: SurveyWeights | None, seed: int = 0
) -> InferenceData:
    """The fit's pseudo-posterior adjusted to the survey design's spread (the fit's own
    `adjust`, else `survey_adjust`; t tails drawn from `seed`); unchanged without a design,
    or when already adjusted (it keeps `pseudo_posterior`)."""
    if survey is None or survey_adjust.UNADJUSTED in idata.groups():
        return idata
    if fit.adjust is not None:
        return fit.adjust(idata, survey, seed)
    if fit.engine != PYMC:
        raise ConfigError(f"fit {fit.label!r}: the {fit.engine} engine takes no survey weights")
    return survey_adjust.adjust(fit.build(), idata, survey, seed)


def extender(fit: Fit) -> Callable[[Fit, InferenceData, SamplerSpec], InferenceData]:
    """The function continuing a saved posterior of this fit, if its engine can resume chains
    (`--extend`)."""
    if fit.engine not in EXTENDERS:
        raise ConfigError(
            f"--extend: fit {fit.label!r} is sampled by the {fit.engine} engine, which cannot "
            f"continue a run; engines that can: {', '.join(EXTENDERS)}"
        )
    return EXTENDERS[fit.engine]
