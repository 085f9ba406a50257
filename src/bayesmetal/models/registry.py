"""The registered models, by the name a config's `model.name` gives.

Adding a model is one module exposing a `MODEL` (a `ModelDefinition`) and one line here.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Union

from pydantic import Field, create_model

from bayesmetal.errors import ConfigError
from bayesmetal.models import bkmr, bwqs, glm, qgcomp
from bayesmetal.models.contract import ModelDefinition
from bayesmetal.run_schema import ModelSpec, RunConfig

MODELS: dict[str, ModelDefinition] = {
    module.MODEL.name: module.MODEL for module in (glm, bwqs, bkmr, qgcomp)
}


def definition(spec: ModelSpec) -> ModelDefinition:
    """The registered model a config's `model:` section names."""
    return MODELS[spec.name]


@cache
def run_schema() -> type[RunConfig]:
    """RunConfig whose `model:` is one of the registered models' specs (by `name`)."""
    specs = tuple(model.spec for model in MODELS.values())
    choice = Annotated[Union[specs], Field(discriminator="name")]  # noqa: UP007 (a runtime tuple)
    return create_model("RunConfig", __base__=RunConfig, model=(choice | None, None))


def default_priors(spec: ModelSpec, family: str) -> dict[str, dict[str, Any]]:
    """The model's default priors for this outcome family; a family the model does not take
    is an error naming the model."""
    model = definition(spec)
    if family not in model.families:
        raise ConfigError(
            f"model {model.name!r} takes {', '.join(model.families)} outcomes; this outcome "
            f"is {family}"
        )
    return model.default_priors(spec, family)
