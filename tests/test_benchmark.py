"""scripts/bench.py's measurements: every column present and the times adding up (prior
draws instead of MCMC, so the sampling time is set by hand)."""

from __future__ import annotations

import math

import yaml

from bayesmetal import benchmark, engines

from .fakesampler import prior_as_posterior
from .toydata import base_config, glm_frame


def test_bench_config_times_the_summaries_as_a_share_of_sampling(tmp_path, monkeypatch):
    def fake(fit, spec, seed_offset=0):
        idata = prior_as_posterior(fit.build(), spec, seed_offset)
        idata.attrs["wall_time_s"] = 40.0
        return idata

    monkeypatch.setitem(engines.ENGINES, engines.PYMC, fake)
    frame, _ = glm_frame(150, "gaussian", seed=2)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(base_config()))
    row = benchmark.bench_config(tmp_path / "toy.yaml")
    assert row["n"] == 150 and row["sample_s"] == 40.0 and row["survey_adjust_s"] == 0
    # both rounded to 0.1 s: with fake sampling the run is almost all summaries
    assert 0 < row["summarise_s"] <= row["wall_s"]
    assert math.isclose(row["summarise_share"], row["summarise_s"] / 40.0, abs_tol=0.002)
