"""Synthetic NHANES files in the real layout, with a known exposure-outcome truth.

`write_synthetic_nhanes` writes <dest>/<cycle>/<NAME>.XPT for any cycle and component the
cohorts use (real file and variable names, labels, LOD comment codes, subsample weights), so
cohorts whose CDC files are missing here still run end to end, and model tests have data
whose truth is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmetal.catalog import Cycle, get_cycle
from bayesmetal.extract import write_xpt

# name -> (variable, comment-code variable, label, log-mean, log-sd, LOD)
METALS = {
    "Pb": ("LBXBPB", "LBDBPBLC", "Blood lead (ug/dL)", np.log(0.8), 0.7, 0.07),
    "Cd": ("LBXBCD", "LBDBCDLC", "Blood cadmium (ug/L)", np.log(0.25), 0.8, 0.1),
    "Hg": ("LBXTHG", "LBDTHGLC", "Blood mercury, total (ug/L)", np.log(0.6), 1.0, 0.28),
    "Mn": ("LBXBMN", "LBDBMNLC", "Blood manganese (ug/L)", np.log(10.0), 0.3, 0.99),
    "Se": ("LBXBSE", "LBDBSELC", "Blood selenium (ug/L)", np.log(190.0), 0.12, 24.5),
}
SERUM = {
    "Cu": ("LBXSCU", "Serum Copper (ug/dL)", np.log(110.0), 0.2),
    "SeS": ("LBXSSE", "Serum Selenium (ug/L)", np.log(125.0), 0.12),
    "Zn": ("LBXSZN", "Serum Zinc (ug/dL)", np.log(80.0), 0.15),
}
# Components whose metals are measured in a subsample, by cycle code: (weight, share).
SUBSAMPLES = {
    ("PBCD", "H"): ("WTSH2YR", "Blood metal weights", 0.5),
    ("PBCD", "I"): ("WTSH2YR", "Blood metal weights", 0.5),
    ("CUSEZN", "G"): ("WTSA2YR", "Subsample A weights", 1 / 3),
    ("CUSEZN", "H"): ("WTSA2YR", "Subsample A weights", 1 / 3),
    ("CUSEZN", "I"): ("WTSA2YR", "Subsample A weights", 1 / 3),
}
ALL_COMPONENTS = (
    "DEMO",
    "PBCD",
    "CUSEZN",
    "DXX",
    "DXXFEM",
    "DXXSPN",
    "BMX",
    "COT",
    "PAQ",
    "FASTQX",
    "BPQ",
    "DIQ",
    "RHQ",
    "SMQ",
    "OSQ",
    "ALQ",
)


@dataclass(frozen=True)
class SyntheticTruth:
    """What generated the outcomes: BMD = intercept + sum(coef x standardised log metal)."""

    coefficients: dict[str, float]
    intercept: float
    noise_sd: float
    log_mean: dict[str, float] = field(default_factory=dict)
    log_sd: dict[str, float] = field(default_factory=dict)


DEFAULT_TRUTH = SyntheticTruth(
    coefficients={"Pb": -0.03, "Cd": -0.04, "Hg": 0.0, "Mn": 0.02, "Se": 0.0},
    intercept=0.95,
    noise_sd=0.08,
    log_mean={k: v[3] for k, v in METALS.items()},
    log_sd={k: v[4] for k, v in METALS.items()},
)


def _people(cycle: Cycle, n: int, rng: np.random.Generator) -> pd.DataFrame:
    seqn = 10_000_000 + 100_000 * "GHIJP".index(cycle.code) + np.arange(1, n + 1)
    sex = rng.integers(1, 3, n).astype(float)
    age = rng.integers(8, 81, n).astype(float)
    demo = pd.DataFrame(
        {
            "SEQN": seqn.astype(float),
            "RIDSTATR": np.where(rng.random(n) < 0.95, 2.0, 1.0),
            "RIAGENDR": sex,
            "RIDAGEYR": age,
            "RIDRETH3": rng.choice([1.0, 2.0, 3.0, 4.0, 6.0, 7.0], n),
            "INDFMPIR": np.where(rng.random(n) < 0.08, np.nan, np.round(rng.uniform(0, 5, n), 2)),
            "SDMVPSU": rng.integers(1, 3, n).astype(float),
            "SDMVSTRA": rng.integers(1, 15, n).astype(float),
        }
    )
    weight = np.round(rng.uniform(2_000, 60_000, n), 4)
    if cycle.code == "P":
        demo["WTMECPRP"] = weight
    else:
        demo["WTMEC2YR"] = weight
    return demo


DEMO_LABELS = {
    "SEQN": "Respondent sequence number",
    "RIDSTATR": "Interview/Examination status",
    "RIAGENDR": "Gender",
    "RIDAGEYR": "Age in years at screening",
    "RIDRETH3": "Race/Hispanic origin w/ NH Asian",
    "INDFMPIR": "Ratio of family income to poverty",
    "SDMVPSU": "Masked variance pseudo-PSU",
    "SDMVSTRA": "Masked variance pseudo-stratum",
    "WTMEC2YR": "Full sample 2 year MEC exam weight",
    "WTMECPRP": "Full sample MEC exam weight",
}


def _metals(
    demo: pd.DataFrame, cycle: Cycle, rng: np.random.Generator
) -> tuple[pd.DataFrame, dict]:
    n = len(demo)
    table = pd.DataFrame({"SEQN": demo["SEQN"]})
    labels = {"SEQN": DEMO_LABELS["SEQN"]}
    measured = rng.random(n) < SUBSAMPLES.get(("PBCD", cycle.code), ("", "", 0.92))[2]
    for var, flag, label, mu, sd, lod in METALS.values():
        value = np.exp(rng.normal(mu, sd, n))
        below = value < lod
        value = np.where(below, np.round(lod / np.sqrt(2), 3), np.round(value, 3))
        table[var] = np.where(measured, value, np.nan)
        table[flag] = np.where(measured, below.astype(float), np.nan)
        labels[var], labels[flag] = label, label.split(" (")[0] + " comment code"
    if ("PBCD", cycle.code) in SUBSAMPLES:
        wvar, wlabel, _ = SUBSAMPLES[("PBCD", cycle.code)]
        table[wvar] = np.where(measured, np.round(2 * demo.filter(like="WTMEC").iloc[:, 0], 4), 0.0)
        labels[wvar] = wlabel
    return table, labels


def _serum(demo: pd.DataFrame, cycle: Cycle, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    n = len(demo)
    wvar, wlabel, share = SUBSAMPLES.get(
        ("CUSEZN", cycle.code), ("WTSA2YR", "Subsample A weights", 1 / 3)
    )
    measured = (rng.random(n) < share) & (demo["RIDAGEYR"] >= 6).to_numpy()
    table = pd.DataFrame({"SEQN": demo["SEQN"]})
    labels = {"SEQN": DEMO_LABELS["SEQN"], wvar: wlabel}
    table[wvar] = np.where(measured, np.round(3 * demo.filter(like="WTMEC").iloc[:, 0], 4), 0.0)
    for var, label, mu, sd in SERUM.values():
        table[var] = np.where(measured, np.round(np.exp(rng.normal(mu, sd, n)), 2), np.nan)
        labels[var] = label
    return table[demo.index.isin(np.flatnonzero(measured))], labels


def _bmd(demo: pd.DataFrame, metals: pd.DataFrame, truth: SyntheticTruth, rng) -> np.ndarray:
    """BMD from standardised log metals with the truth's coefficients, plus age and sex."""
    signal = np.full(len(demo), truth.intercept)
    for name, coef in truth.coefficients.items():
        var = METALS[name][0]
        z = (np.log(metals[var].to_numpy()) - truth.log_mean[name]) / truth.log_sd[name]
        signal = signal + coef * z
    age = demo["RIDAGEYR"].to_numpy()
    signal = signal + 0.004 * np.clip(age - 8, 0, 12) - 0.003 * np.clip(age - 50, 0, None)
    signal = signal - 0.03 * (demo["RIAGENDR"].to_numpy() == 2)
    return signal + rng.normal(0, truth.noise_sd, len(demo))


def _answers(rng, n: int, codes: list[float], p: list[float]) -> np.ndarray:
    return rng.choice(codes, n, p=p)


def synthetic_cycle(
    cycle: Cycle, n: int, rng: np.random.Generator, truth: SyntheticTruth
) -> dict[str, tuple[pd.DataFrame, dict[str, str]]]:
    """All synthetic components of one cycle: component -> (table, labels)."""
    demo = _people(cycle, n, rng)
    metals, metal_labels = _metals(demo, cycle, rng)
    # metals drive bone outcomes only where measured; elsewhere use typical values
    filled = metals.copy()
    for name, (var, *_rest) in METALS.items():
        filled[var] = filled[var].fillna(np.exp(truth.log_mean[name]))
    density = _bmd(demo, filled, truth, rng)
    seqn = demo["SEQN"]
    label = DEMO_LABELS["SEQN"]
    dxa = rng.random(n) < 0.85
    out: dict[str, tuple[pd.DataFrame, dict[str, str]]] = {
        "DEMO": (demo, {c: DEMO_LABELS[c] for c in demo.columns}),
        "PBCD": (metals, metal_labels),
        "CUSEZN": _serum(demo, cycle, rng),
        "DXX": (
            pd.DataFrame(
                {
                    "SEQN": seqn,
                    "DXDTOBMD": np.where(dxa, np.round(density, 3), np.nan),
                    "DXXLSBMD": np.where(
                        dxa, np.round(density - 0.08 + rng.normal(0, 0.04, n), 3), np.nan
                    ),
                }
            ),
            {
                "SEQN": label,
                "DXDTOBMD": "Total Bone Mineral Density (g/cm^2)",
                "DXXLSBMD": "Lumbar Spine BMD (g/cm^2)",
            },
        ),
        "DXXFEM": (
            pd.DataFrame(
                {
                    "SEQN": seqn,
                    "DXXOFBMD": np.round(density - 0.05, 3),
                    "DXXNKBMD": np.round(density - 0.15 + rng.normal(0, 0.03, n), 3),
                }
            ),
            {"SEQN": label, "DXXOFBMD": "Total femur BMD", "DXXNKBMD": "Femoral neck BMD"},
        ),
        "DXXSPN": (
            pd.DataFrame({"SEQN": seqn, "DXXOSBMD": np.round(density + 0.02, 3)}),
            {"SEQN": label, "DXXOSBMD": "Total spine BMD"},
        ),
        "BMX": (
            pd.DataFrame({"SEQN": seqn, "BMXBMI": np.round(rng.normal(26, 6, n).clip(13, 60), 1)}),
            {"SEQN": label, "BMXBMI": "Body Mass Index (kg/m**2)"},
        ),
        "COT": (
            pd.DataFrame({"SEQN": seqn, "LBXCOT": np.round(np.exp(rng.normal(-2, 2.5, n)), 3)}),
            {"SEQN": label, "LBXCOT": "Cotinine, Serum (ng/mL)"},
        ),
        "FASTQX": (
            pd.DataFrame({"SEQN": seqn, "PHAFSTHR": rng.integers(0, 20, n).astype(float)}),
            {"SEQN": label, "PHAFSTHR": "Total length of 'food fast', hours"},
        ),
        "BPQ": (
            pd.DataFrame({"SEQN": seqn, "BPQ020": _answers(rng, n, [1, 2, 9], [0.3, 0.69, 0.01])}),
            {"SEQN": label, "BPQ020": "Ever told you had high blood pressure"},
        ),
        "DIQ": (
            pd.DataFrame({"SEQN": seqn, "DIQ010": _answers(rng, n, [1, 2, 3], [0.1, 0.87, 0.03])}),
            {"SEQN": label, "DIQ010": "Doctor told you have diabetes"},
        ),
        "RHQ": (
            pd.DataFrame(
                {
                    "SEQN": seqn[demo["RIAGENDR"] == 2],
                    "RHQ031": _answers(rng, int((demo["RIAGENDR"] == 2).sum()), [1, 2], [0.5, 0.5]),
                    "RHD043": _answers(
                        rng, int((demo["RIAGENDR"] == 2).sum()), [3, 7, 9], [0.2, 0.75, 0.05]
                    ),
                }
            ),
            {
                "SEQN": label,
                "RHQ031": "Had regular periods in past 12 months",
                "RHD043": "Reason not having regular periods",
            },
        ),
        "SMQ": (
            pd.DataFrame(
                {
                    "SEQN": seqn,
                    "SMQ020": _answers(rng, n, [1, 2], [0.45, 0.55]),
                    "SMQ040": _answers(rng, n, [1, 2, 3], [0.3, 0.1, 0.6]),
                }
            ),
            {
                "SEQN": label,
                "SMQ020": "Smoked at least 100 cigarettes in life",
                "SMQ040": "Do you now smoke cigarettes",
            },
        ),
        "OSQ": (
            pd.DataFrame({"SEQN": seqn, "OSQ060": np.where(density < 0.85, 1.0, 2.0)}),
            {"SEQN": label, "OSQ060": "Ever told had osteoporosis/brittle bones"},
        ),
        "ALQ": (
            pd.DataFrame({"SEQN": seqn, "ALQ101": _answers(rng, n, [1, 2], [0.7, 0.3])}),
            {"SEQN": label, "ALQ101": "Had at least 12 alcohol drinks/1 yr?"},
        ),
    }
    pa = {"SEQN": seqn}
    pa_labels = {"SEQN": label}
    for gate, days, minutes in [
        ("PAQ605", "PAQ610", "PAD615"),
        ("PAQ620", "PAQ625", "PAD630"),
        ("PAQ635", "PAQ640", "PAD645"),
        ("PAQ650", "PAQ655", "PAD660"),
        ("PAQ665", "PAQ670", "PAD675"),
    ]:
        yes = rng.random(n) < 0.5
        pa[gate] = np.where(yes, 1.0, 2.0)
        pa[days] = np.where(yes, rng.integers(1, 8, n), np.nan)
        pa[minutes] = np.where(yes, rng.choice([10, 20, 30, 60, 90, 120], n), np.nan)
        pa_labels.update({gate: gate, days: days, minutes: minutes})
    out["PAQ"] = (pd.DataFrame(pa), pa_labels)
    return out


def write_synthetic_nhanes(
    dest: Path,
    cycles: list[str],
    n: int = 600,
    seed: int = 20240601,
    components: tuple[str, ...] = ALL_COMPONENTS,
    truth: SyntheticTruth = DEFAULT_TRUTH,
) -> SyntheticTruth:
    """Write synthetic XPT files for the cycles and components; return the truth used."""
    rng = np.random.default_rng(seed)
    for label in cycles:
        cycle = get_cycle(label)
        tables = synthetic_cycle(cycle, n, rng, truth)
        folder = Path(dest) / cycle.label
        folder.mkdir(parents=True, exist_ok=True)
        for comp in components:
            frame, labels = tables[comp]
            write_xpt(
                frame.reset_index(drop=True),
                labels,
                folder / cycle.file_name(comp),
                cycle.file_stem(comp),
            )
    return truth
