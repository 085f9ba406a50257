"""report.html without a browser: the answer first, flags at the top, details collapsed, numbers
rounded, priors and covariate coefficients as tables (the browser check: test_report_browser)."""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from bayesmetal import report
from bayesmetal.arviz_api import InferenceData
from bayesmetal.cli import fit_main
from bayesmetal.summaries.posterior import covariate_coefficients

from .fakesampler import use_fake_sampler
from .toydata import base_config, glm_frame


def png(width: float = 4, height: float = 2, dpi: int = 50) -> bytes:
    figure = plt.figure(figsize=(width, height))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()


def diagnostics(ok: bool = True) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fit": ["multi", "multi"],
            "parameter": ["beta[e1]", "sigma"],
            "rhat": [1.001, 1.0 if ok else 1.0523],
            "ess_bulk": [812.0, 950.0 if ok else 31.0],
            "ess_tail": [700.0, 640.0],
            "divergences": [0, 0],
            "problems": ["", "" if ok else "R-hat 1.052 > 1.01; ESS 31 < 400"],
            "ok": [True, ok],
            "note": ["", ""],
        }
    )


EFFECTS = pd.DataFrame(
    {
        "fit": "multi",
        "term": ["e1", "e2"],
        "measure": "beta",
        "estimate": [0.5413897803677781, -0.0123456789],
        "sd": [0.11, 0.09],
        "lower": [0.33, -0.19],
        "upper": [0.75, 0.16],
        "prob_direction": [0.99975, 0.55],
        "p_two_sided": [0.0005, 0.9],
        "ci_prob": 0.95,
    }
)
PRIORS = {
    "intercept": {"distribution": "Normal", "mu": 0, "sigma": 10},
    "beta": {
        "distribution": "Normal",
        "mu": {"distribution": "Normal", "mu": 0, "sigma": 2.5},
        "sigma": {"distribution": "HalfNormal", "sigma": 1},
    },
    "w": {"distribution": "Dirichlet", "a": [1.0, 1.0, 1.0, 1.0, 1.0]},
}


def page(ok: bool = True, **kwargs) -> str:
    long = pd.DataFrame({"variable": ["a"] * 120, "z": np.linspace(-2, 2, 120), "estimate": 0.1})
    tables = {
        "flow": pd.DataFrame(
            {"step": ["rows"], "n_before": [300], "excluded": [0], "n_after": 300}
        ),
        "effects": EFFECTS,
        "curves": long,
        "covariates": pd.DataFrame(
            {"fit": "multi", "covariate": ["age"], "mean": [0.2], "median": [0.21]}
        ),
    }
    figures = {"forest": png(), "curves": png(10, 3, dpi=100), "rank_multi": png()}
    arguments = {
        "title": "bayesmetal: toy",
        "lead": {"outcome": "y (gaussian)", "model": "glm multi", "n": "300"},
        "verdict": "converged: max R-hat 1.001" if ok else "NOT CONVERGED for 1 parameter(s)",
        "diagnostics": diagnostics(ok),
        "tables": tables,
        "figures": figures,
        "headline": ("effects", "forest", "curves", "absent"),
        "priors": PRIORS,
        "meta": {"config": "toy.yaml"},
    }
    return report.render(**(arguments | kwargs))


def section(text: str, ident: str) -> str:
    """The HTML of <section id=ident>."""
    start = text.index(f"<section id={ident}>")
    return text[start : text.index("</section>", start)]


def test_headline_leads_and_details_follow():
    text = page()
    lead = text.index("<p class=lead>")
    banner = text.index("id=verdict")
    headline = text.index("<section id=headline>")
    assert lead < banner < headline < text.index("<section id=details>")
    assert text.index("<table class='headline'>") < text.index("<details")
    assert text.index("<img") < text.index("<details")
    assert "<b>outcome</b> y (gaussian)" in text and "<b>n</b> 300" in text
    top = section(text, "headline")
    assert "id='headline-effects'" in top and "id='headline-forest'" in top
    assert "absent" not in top  # a headline name this run lacks is skipped
    # a long headline table: only its figure (a wide one: a whole row) and a link up front
    curves = top[top.index("id='headline-curves'") :]
    assert "<table" not in curves and "120 rows" in curves and "href='curves.csv'" in curves
    assert "class='card wide'" in top
    assert "<details id='table-curves'>" in text  # collapsed, never open
    # every table but the covariates is collapsed, each with its CSV
    for name in ("effects", "curves", "diagnostics", "flow"):
        assert f"<details id='table-{name}'>" in text, name
        assert f"href='{name}.csv'" in text, name
    assert "<details id='table-covariates' open>" in text
    assert "rank multi" in section(text, "details")  # rank plots collapsed with the details


def test_headline_table_is_cut_and_captioned():
    cut = report.compact(EFFECTS)
    columns = ["term", "estimate", "95% interval", "prob_direction", "p_two_sided"]
    assert list(cut.table.columns) == columns
    assert cut.notes == ["fit: multi", "measure: beta"]  # constant columns: the caption
    assert cut.table["estimate"].tolist() == ["0.541", "-0.012"]
    assert cut.table["95% interval"].tolist() == ["[0.330, 0.750]", "[-0.190, 0.160]"]
    assert set(cut.numbers) == {"estimate", "95% interval"} and cut.footnotes == []
    bkmr = pd.DataFrame(
        {
            "quantile": [0.25, 0.5],
            "estimate": [-0.7157557, 0.0],
            "estimate_is": "median",
            "mean": [-0.71018, 0.001],
            "median": [-0.7157557, 0.0],
            "lower": [-0.75, 0.0],
            "upper": [-0.58, 0.0],
            "note": ["PIP < 0.01", "PIP < 0.01; mean outside the 95% interval"],
            "group": [np.nan, np.nan],  # empty: left out
        }
    )
    cut = report.compact(bkmr)
    assert cut.notes == ["estimate: posterior median"]  # which statistic is the point estimate
    assert list(cut.table.columns) == ["quantile", "estimate", "mean", "interval", "note"]
    assert cut.table["estimate"].tolist() == ["-0.716", "0.000"]
    # each distinct note once, under the table; the rows give its number
    assert cut.footnotes == ["PIP < 0.01", "mean outside the 95% interval"]
    assert cut.table["note"].tolist() == ["1", "1, 2"]


def test_failed_checks_give_a_red_banner_naming_them():
    text = page(ok=False)
    banner = text[text.index("<div class='banner bad' id=verdict>") : text.index("<section")]
    assert "Convergence failed for 1 of 2 parameters" in banner
    assert "multi/sigma" in banner and "R-hat 1.052 &gt; 1.01; ESS 31 &lt; 400" in banner
    assert "beta[e1]" not in banner
    assert "<span class='state bad'>NOT CONVERGED</span>" in text
    diagnostics_table = text[text.index("<details id='table-diagnostics'>") :]
    assert diagnostics_table.count("<tr class=bad>") == 1
    good = page(ok=True)
    assert "<p class='banner ok' id=verdict>" in good
    assert "Convergence checks passed: max R-hat 1.001" in good
    assert "banner bad" not in good


def test_many_failures_are_listed_compactly():
    table = pd.DataFrame(
        {
            "fit": "bkmr",
            "parameter": [f"r[{i}]" for i in range(12)],
            "problems": "ESS 20 < 400",
            "ok": False,
        }
    )
    text = report.banner("NOT CONVERGED ... To reach ESS 400, raise sampler.draws to 900", table)
    assert text.count("<li>") == report.BANNER_ITEMS + 1 and "and 4 more" in text
    assert "To reach ESS 400, raise sampler.draws to 900" in text


def test_priors_are_a_readable_table():
    assert (
        report.prior_text(PRIORS["beta"], keywords=True)
        == "Normal(mu=Normal(0, 2.5), sigma=HalfNormal(1))"
    )
    table = report.priors_table(PRIORS)
    assert table.to_dict("records") == [
        {"prior": "intercept", "distribution": "Normal", "parameters": "mu=0, sigma=10"},
        {
            "prior": "beta",
            "distribution": "Normal",
            "parameters": "mu=Normal(0, 2.5), sigma=HalfNormal(1)",
        },
        {"prior": "w", "distribution": "Dirichlet", "parameters": "a=[1 x 5]"},
    ]
    text = page()
    priors = text[text.index("<details id='priors'>") :]
    assert "<td class='text'>mu=Normal(0, 2.5), sigma=HalfNormal(1)</td>" in priors
    assert (
        '"distribution"' not in text and "{" not in section(text, "details").split("</style>")[-1]
    )


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("estimate", [0.5413897803677781, 0.02], ["0.541", "0.020"]),
        ("mean", [99.75530179445352, 1.5], ["99.8", "1.5"]),
        ("concentration", [1234.5678, 2.0], ["1235", "2"]),
        ("estimate", [0.00012345, 0.0002], ["0.000123", "0.0002"]),
        ("quantile", [0.25, 0.3, 0.75], ["0.25", "0.30", "0.75"]),
        ("ess_bulk", [247.0, 1834.0], ["247", "1834"]),
        ("rhat", [1.0, 1.01234], ["1.000", "1.012"]),
        ("p_two_sided", [0.0004, 0.0, 0.004, 0.92], ["< 0.001", "< 0.001", "0.004", "0.92"]),
        ("pip", [1.0, 0.0, 0.0004, 0.4567], ["1.00", "0.00", "< 0.001", "0.46"]),
        ("prob_direction", [0.999, np.nan], ["1.00", ""]),
        ("estimate", [-0.0001, 2.0], ["0.00", "2.00"]),  # no '-0.00'
    ],
)
def test_numbers_are_rounded_by_column(name, values, expected):
    show = report.formatter(name, np.asarray(values))
    assert [show(v) for v in values] == expected


def test_no_long_numbers_in_the_page():
    text = page()
    body = text.split("</style>")[1]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", body)
    assert cells and not [c for c in cells if re.fullmatch(r"-?\d+\.\d{5,}", c)]
    assert "0.541" in body and "&lt; 0.001" in body  # the estimate and p_two_sided of e1
    assert "< 0.001" not in body and "&amp;lt;" not in body  # escaped once
    assert "0.5413897803677781" not in body


def posterior(**variables) -> InferenceData:
    data = {}
    coords = {"chain": [0, 1], "draw": np.arange(500)}
    for name, (dim, labels, values) in variables.items():
        data[name] = (("chain", "draw", dim), values)
        coords[dim] = labels
    return InferenceData(posterior=xr.Dataset(data, coords=coords))


def test_covariate_coefficients_of_any_fit():
    rng = np.random.default_rng(0)
    gamma = rng.normal([1.0, -2.0], 0.1, size=(2, 500, 2))
    beta = rng.normal(0.3, 0.05, size=(2, 500, 1))
    idata = posterior(
        gamma=("covariate", ["age", "sex[male]"], gamma),
        beta=("term", ["e1"], beta),  # exposure effects: not a covariate
    )
    table = covariate_coefficients(idata, 0.9, "multi", {"age": (50.0, 12.345)})
    assert table["covariate"].tolist() == ["age", "sex[male]"]
    assert table["per"].tolist() == ["1 SD (12.3)", "vs reference level"]
    flat = gamma.reshape(-1, 2)
    np.testing.assert_allclose(table["mean"], flat.mean(0))
    np.testing.assert_allclose(table["median"], np.median(flat, 0))
    np.testing.assert_allclose(table["lower"], np.quantile(flat, 0.05, 0))
    np.testing.assert_allclose(table["upper"], np.quantile(flat, 0.95, 0))
    assert (table["prob_direction"] == 1).all() and (table["ci_prob"] == 0.9).all()
    bkmr = covariate_coefficients(posterior(beta=("coef", ["age"], beta)), 0.95, "bkmr")
    assert bkmr[["fit", "variable", "covariate"]].values.tolist() == [["bkmr", "beta", "age"]]
    none = covariate_coefficients(posterior(beta=("term", ["e1"], beta)), 0.95, "x")
    assert none.empty and "median" in none.columns


def test_fit_writes_covariates_and_the_report_shows_them(tmp_path, monkeypatch):
    """A GLM run (prior draws for speed): covariates.csv with every coefficient, shown in the
    report; the report's header line, headline card and priors table."""
    use_fake_sampler(monkeypatch)
    frame, _ = glm_frame(200, "gaussian", seed=4)
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(base_config()))
    out = tmp_path / "run"
    assert fit_main([str(tmp_path / "toy.yaml"), "--out", str(out)]) == 0
    covariates = pd.read_csv(out / "covariates.csv")
    assert covariates["covariate"].tolist() == ["age", "sex[male]"]
    assert {"mean", "median", "lower", "upper"} <= set(covariates.columns)
    text = (out / "report.html").read_text()
    assert "<b>outcome</b> y (gaussian)" in text and "<b>model</b> glm multi" in text
    assert "<b>n</b> 200" in text
    assert "id='headline-effects'" in text and "id='headline-forest'" in text
    shown = text[text.index("<details id='table-covariates' open>") :]
    assert "sex[male]" in shown.split("</details>")[0] and "1 SD (" in shown
    priors = text[text.index("<details id='priors'>") :].split("</details>")[0]
    assert "<td class='text'>gamma</td><td class='text'>Normal</td>" in priors
    assert '"distribution"' not in text
