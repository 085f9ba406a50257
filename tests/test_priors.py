"""Priors are data: overrides take effect in the built model; bad ones name the key."""

import numpy as np
import pymc as pm
import pytest

from bayesmetal import priors
from bayesmetal.errors import ConfigError
from bayesmetal.models import bwqs, glm
from bayesmetal.models.bwqs import BwqsSpec

from .toydata import bwqs_design, glm_frame


def _design():
    from bayesmetal.design import make_design

    frame, _ = glm_frame(100, "gaussian", seed=1)
    return make_design(frame, "y", "gaussian", ["e1", "e2"], ["age", "sex"], id_column="none")


def test_override_changes_the_built_model():
    design = _design()
    defaults = glm.default_priors(None, "gaussian")
    tight = priors.resolve(
        defaults, {"beta": {"distribution": "Normal", "mu": 3, "sigma": 0.01}}, "glm"
    )
    model = glm.build_glm(design, design.multi_terms(), tight)
    draws = pm.draw(model["beta"], draws=2000, random_seed=1)
    assert draws.mean() == pytest.approx(3, abs=0.01) and draws.std() == pytest.approx(
        0.01, rel=0.1
    )
    default_model = glm.build_glm(design, design.multi_terms(), defaults)
    assert pm.draw(default_model["beta"], draws=2000, random_seed=1).std() == pytest.approx(
        2.5, rel=0.1
    )


def test_transform_is_honoured_not_dropped():
    """`transform:` used to be accepted and silently ignored: exp(Normal) must be positive."""
    design = _design()
    spec = {"distribution": "Normal", "mu": 0, "sigma": 1, "transform": "exp"}
    resolved = priors.resolve(glm.default_priors(None, "gaussian"), {"beta": spec}, "glm")
    model = glm.build_glm(design, design.multi_terms(), resolved)
    draws = pm.draw(model["beta"], draws=500, random_seed=1)
    assert (draws > 0).all() and np.median(draws) == pytest.approx(1, abs=0.15)
    with pytest.raises(ConfigError, match="priors.beta.*nonsense"):
        priors.resolve(
            glm.default_priors(None, "gaussian"), {"beta": {**spec, "transform": "nonsense"}}, "glm"
        )


def test_unknown_prior_name_lists_valid_names():
    with pytest.raises(ConfigError, match="betaa.*valid names: beta, gamma, intercept, sigma"):
        priors.resolve(
            glm.default_priors(None, "gaussian"), {"betaa": {"distribution": "Normal"}}, "glm"
        )


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"distribution": "Normal", "mu": 0, "sgma": 1}, "priors.beta"),
        ({"distribution": "Normall", "mu": 0, "sigma": 1}, "Normall"),
        ({"mu": 0, "sigma": 1}, "distribution"),
    ],
)
def test_bad_prior_parameters_name_the_key(spec, message):
    design = _design()
    with pytest.raises(ConfigError, match=message):
        resolved = priors.resolve(glm.default_priors(None, "gaussian"), {"beta": spec}, "glm")
        glm.build_glm(design, design.multi_terms(), resolved)


def test_dirichlet_alpha_scalar_broadcasts_and_wrong_length_fails():
    design = bwqs_design(60, "gaussian", 0.5, seed=2)
    spec = BwqsSpec(name="bwqs")
    half = priors.resolve(
        bwqs.default_priors(spec, "gaussian"),
        {"weights": {"distribution": "Dirichlet", "a": 0.5}},
        "bwqs",
    )
    model = bwqs.build_bwqs(design, spec, half)
    w = pm.draw(model["w"], draws=4000, random_seed=3)
    assert w.shape == (4000, 6) and np.allclose(w.sum(axis=1), 1)
    # Dirichlet(0.5): the largest weight is on average larger than under Dirichlet(1)
    flat = pm.draw(
        bwqs.build_bwqs(design, spec, bwqs.default_priors(spec, "gaussian"))["w"],
        draws=4000,
        random_seed=3,
    )
    assert w.max(axis=1).mean() > flat.max(axis=1).mean() + 0.05
    wrong = priors.resolve(
        bwqs.default_priors(spec, "gaussian"),
        {"weights": {"distribution": "Dirichlet", "a": [1, 2]}},
        "bwqs",
    )
    with pytest.raises(ConfigError, match="priors.weights.a: needs 1 or 6 values"):
        bwqs.build_bwqs(design, spec, wrong)


def test_negative_direction_constrains_b1():
    design = bwqs_design(60, "gaussian", 0.5, seed=2)
    spec = BwqsSpec(name="bwqs", direction="negative")
    model = bwqs.build_bwqs(design, spec, bwqs.default_priors(spec, "gaussian"))
    assert (pm.draw(model["b1"], draws=500, random_seed=1) <= 0).all()
