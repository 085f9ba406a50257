"""Figures a paper can print: curves over the concentration in the file's unit on a log axis
with a rug and 95% bands, effect axes that never magnify noise, one colour per exposure in
every figure, readable rank plots, and every figure written as PNG and SVG."""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex

from bayesmetal import plots
from bayesmetal.arviz_api import from_chains, rank_plot
from bayesmetal.runs import save_figure

EXPOSURES = ("Pb", "Cd", "Mn")
NGRID = 6


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    matplotlib.pyplot.close("all")


def curves(slope: float = 0.0) -> pd.DataFrame:
    """A univariate table as `pred_resp_univar` + `with_concentration` write it."""
    rows = []
    for j, name in enumerate(EXPOSURES):
        conc = np.geomspace(0.1 * (j + 1), 10.0 * (j + 1), NGRID)
        change = slope * np.log(conc / np.sqrt(conc[0] * conc[-1]))
        for c, d in zip(conc, change, strict=True):
            rows.append(
                {
                    "variable": name,
                    "z": np.log(c),
                    "estimate": 0.8 + d,
                    "lower": 0.78 + d,
                    "upper": 0.82 + d,
                    "change": d,
                    "change_lower": d - 1e-4,
                    "change_upper": d + 1e-4,
                    "concentration": c,
                }
            )
    return pd.DataFrame(rows)


def observed(n: int = 50) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {name: np.exp(rng.normal(j, 1, n)) for j, name in enumerate(EXPOSURES)}


def risks() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"variable": v, "q_fixed": q, "estimate": 0.0, "lower": -1e-5, "upper": 1e-5}
            for v in EXPOSURES
            for q in (0.25, 0.5, 0.75)
        ]
    )


def test_curves_over_concentration_in_its_unit_with_rug_and_bands():
    figure = plots.univariate_panel(
        curves(),
        "lumbar_bmd",
        concentrations=observed(),
        units={"Pb": "ug/dL", "lumbar_bmd": "g/cm²"},
        min_half_span=0.05,
    )
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert len(axes) == len(EXPOSURES)
    for ax in axes:
        assert ax.get_xscale() == "log"
        assert any(isinstance(c, PolyCollection) for c in ax.collections)  # the 95% band
        assert len(ax.get_lines()) >= 3  # the curve, zero, the rug
        low, high = ax.get_ylim()
        assert low <= -0.05 and high >= 0.05  # a null (band of 1e-4) is not magnified
    assert axes[0].get_xlabel().startswith("Pb (µg/dL)")  # the file's 'ug' shown as µg
    assert plots.UNKNOWN_UNIT in axes[1].get_xlabel()  # no unit known: said so
    assert axes[0].get_ylabel().startswith("change in lumbar_bmd (g/cm²)")


def test_the_axis_grows_beyond_the_minimum_span_for_real_effects():
    figure = plots.univariate_panel(curves(slope=0.3), "y", min_half_span=0.05)
    low, high = figure.axes[0].get_ylim()
    assert high - low > 0.5  # the curve's own range, not the floor


def test_bivariate_levels_have_bands_log_axis_and_minimum_span():
    rows = []
    for q in (0.25, 0.5, 0.75):
        for c in np.geomspace(0.1, 10, NGRID):
            rows.append(
                {
                    "variable1": "Pb",
                    "variable2": "Cd",
                    "quantile2": q,
                    "estimate": 0.8,
                    "lower": 0.79,
                    "upper": 0.81,
                    "change": 1e-5,
                    "change_lower": 0.0,
                    "change_upper": 2e-5,
                    "concentration1": c,
                }
            )
    figure = plots.bivariate_levels(pd.DataFrame(rows), "y", min_half_span=0.1)
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 3
    assert ax.get_ylim()[0] <= -0.1 and ax.get_ylim()[1] >= 0.1


def test_risk_plots_show_points_with_intervals_and_minimum_span():
    overall = pd.DataFrame(
        {"quantile": [0.25, 0.5, 0.75], "estimate": [0.0] * 3, "lower": [-1, 0, 0.0]}
    ).assign(upper=[0.0, 0.0, 2.0])
    figure = plots.risk_plot(overall, "quantile", "overall", outcome="y", min_half_span=0.5)
    ax = figure.axes[0]
    assert ax.containers  # errorbar: point + interval
    assert ax.get_ylim()[0] <= -1 and ax.get_ylim()[1] >= 2
    single = plots.single_var_risk_plot(risks(), outcome="y", min_half_span=0.5)
    low, high = single.axes[0].get_xlim()
    assert low <= -0.5 and high >= 0.5
    assert len(single.axes[0].containers) == len(risks())


def test_one_colour_per_exposure_across_figures():
    colours = plots.exposure_colours(EXPOSURES)
    assert len(set(colours.values())) == len(EXPOSURES)
    univariate = plots.univariate_panel(curves(), "y", colours=colours)
    pips = pd.DataFrame({"variable": list(EXPOSURES), "pip": [0.1, 0.9, 0.5]})
    bars = plots.pip_bars(pips, colours=colours)
    single = plots.single_var_risk_plot(risks(), colours=colours)
    for j, name in enumerate(EXPOSURES):
        curve = to_hex(univariate.axes[j].get_lines()[0].get_color())
        bar = to_hex(bars.axes[0].patches[j].get_facecolor())
        point = to_hex(single.axes[0].containers[j].lines[0].get_color())  # q 0.25 rows
        assert curve == bar == point == colours[name]
    # the GLM forest colours a term by the exposure it belongs to
    assert plots._term_colour("Pb Q2", colours) == colours["Pb"]
    assert plots._term_colour("age", colours) == "black"


def test_figures_are_written_as_png_and_svg(tmp_path):
    figure = plots.univariate_panel(curves(), "y", concentrations=observed())
    png = save_figure(figure, tmp_path / "univariate.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "univariate.png").read_bytes() == png
    svg = (tmp_path / "univariate.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    again = plots.univariate_panel(curves(), "y", concentrations=observed())
    save_figure(again, tmp_path / "again.png")
    assert (tmp_path / "again.svg").read_text() == svg  # reproducible bytes


def test_rank_plot_lists_spikes_instead_of_drawing_one_bar():
    rng = np.random.default_rng(1)
    r = np.zeros((2, 200, 3))
    r[..., 0] = rng.gamma(2, 1, (2, 200))  # mixing well
    r[0, :3, 1] = 0.5  # a spike at 0 with rare excursions
    draws = {"lambda": rng.gamma(2, 1, (2, 200)), "r": r}
    idata = from_chains(draws, {"exposure": ["Pb", "Cd", "Mn"]}, {"r": ["exposure"]})
    figure = rank_plot(idata, ["lambda", "r"])
    labels = [ax.get_ylabel() for ax in figure.axes]
    assert "lambda" in labels and "r[Pb]" in labels
    assert "r[Cd]" not in labels and "r[Mn]" not in labels
    note = " ".join(t.get_text() for t in figure.texts)
    assert "r[Cd] = 0 in 99.25% of draws" in note and "r[Mn] = 0 in 100% of draws" in note


def test_units_are_shown_in_the_display_form():
    assert plots.display_unit("ug/dL") == "µg/dL"
    assert plots.display_unit("umol/L") == "µmol/L"
    assert plots.display_unit("mg/dL") == "mg/dL" and plots.display_unit("g/cm^2") == "g/cm²"
    assert plots.outcome_label("y", {"y": "g/cm²"}) == "y (g/cm²)"
    assert plots.outcome_label("y", {}) == "y"
    assert plots.outcome_label("y", {"y": "g/cm²"}, "probit") == "y (probit scale)"


def bivariate_table() -> pd.DataFrame:
    rows = []
    for q in (0.25, 0.5, 0.75):
        for c in np.geomspace(0.1, 10, NGRID):
            rows.append(
                {
                    "variable1": "Pb",
                    "variable2": "Cd",
                    "quantile2": q,
                    "estimate": 0.8,
                    "lower": 0.79,
                    "upper": 0.81,
                    "change": 1e-5,
                    "change_lower": 0.0,
                    "change_upper": 2e-5,
                    "concentration1": c,
                }
            )
    return pd.DataFrame(rows)


def test_every_bkmr_axis_with_a_concentration_or_the_outcome_names_its_unit():
    units = {"Pb": "ug/dL", "Cd": "ug/L", "bmd": "g/cm²"}
    bivariate = plots.bivariate_levels(bivariate_table(), "bmd", units=units)
    assert bivariate.axes[0].get_xlabel().startswith("Pb (µg/dL)")
    assert bivariate.axes[0].get_ylabel().startswith("change in bmd (g/cm²)")
    overall = pd.DataFrame(
        {"quantile": [0.25, 0.5], "estimate": [0.0, 0.1], "lower": [-1, 0], "upper": [1, 2]}
    )
    risk = plots.risk_plot(overall, "quantile", "overall", outcome="bmd", units=units)
    assert risk.axes[0].get_ylabel().startswith("change in bmd (g/cm²)")
    single = plots.single_var_risk_plot(risks(), outcome="bmd", units=units)
    assert single.axes[0].get_xlabel().startswith("change in bmd (g/cm²)")
    # a latent scale has no outcome unit
    probit = plots.risk_plot(overall, "quantile", "o", outcome="bmd", units=units, scale="probit")
    assert probit.axes[0].get_ylabel().startswith("change in bmd (probit scale)")


def effects_table(measure: str = "beta") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fit": "multi",
            "term": ["Pb", "Cd"],
            "measure": measure,
            "estimate": [0.1, -0.2],
            "lower": [0.0, -0.4],
            "upper": [0.2, 0.1],
            "ci_prob": 0.95,
        }
    )


def test_the_glm_forest_names_the_outcome_and_its_unit_on_a_beta_axis():
    figure = plots.forest(effects_table(), outcome="bmd", units={"bmd": "g/cm²"})
    assert figure.axes[0].get_xlabel() == "beta: change in bmd (g/cm²) (95% credible interval)"
    ratio = effects_table("odds ratio").assign(estimate=[1.1, 0.9], lower=0.8, upper=1.3)
    figure = plots.forest(ratio, outcome="bmd", units={"bmd": "g/cm²"})
    assert figure.axes[0].get_xlabel() == "odds ratio (95% credible interval)"  # no unit


@pytest.mark.parametrize("chains", [1, 2])
def test_one_draw_per_chain_draws_a_rank_plot_without_warnings(chains):
    """Chains of one draw each (a plumbing run) set a trace axis from 0 to 0: matplotlib's
    'identical low and high xlims' warning. (Two chains of one draw differ, so they are drawn.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ's 'more chains than draws' about the input
        idata = from_chains({"lambda": np.arange(1.0, chains + 1).reshape(chains, 1)}, {}, {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = rank_plot(idata, ["lambda"])
    drawn = [ax for ax in figure.axes if ax.get_ylabel() == "lambda"]
    assert len(drawn) == (chains > 1)
