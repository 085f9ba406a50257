"""NHANES cycles and components: file names, survey years and where subsample weights live."""

from __future__ import annotations

from dataclasses import dataclass

from bayesmetal.errors import ConfigError


@dataclass(frozen=True)
class Cycle:
    """One NHANES release: its label, file suffix/prefix, first year and length in years."""

    label: str
    code: str
    begin_year: int
    years: float

    def file_stem(self, component: str) -> str:
        """Dataset name of a component in this cycle, e.g. DEMO_J or P_DEMO."""
        stem = COMPONENT_STEMS.get(component, {}).get(self.code, component)
        if self.code == "P":
            return stem if stem.startswith("P_") else f"P_{stem}"
        return stem if stem.endswith(f"_{self.code}") else f"{stem}_{self.code}"

    def file_name(self, component: str) -> str:
        """File name as stored on disk (upper-case .XPT)."""
        return f"{self.file_stem(component)}.XPT"


CYCLES: dict[str, Cycle] = {
    c.label: c
    for c in (
        Cycle("2011-2012", "G", 2011, 2.0),
        Cycle("2013-2014", "H", 2013, 2.0),
        Cycle("2015-2016", "I", 2015, 2.0),
        Cycle("2017-2018", "J", 2017, 2.0),
        Cycle("2017-2020", "P", 2017, 3.2),
    )
}

# Components whose dataset name is not simply <STEM>_<code>: cotinine changed names over time.
COMPONENT_STEMS: dict[str, dict[str, str]] = {
    "COT": {"G": "COTNAL", "H": "COT", "I": "COT", "J": "COT", "P": "COT"},
}

# Cycles whose data overlap: pooling them would count people twice.
OVERLAPPING = {frozenset({"2017-2018", "2017-2020"})}


def get_cycle(label: str) -> Cycle:
    """Look a cycle up by its label ('2013-2014'), with a clear error for unknown ones."""
    try:
        return CYCLES[label]
    except KeyError:
        raise ConfigError(
            f"unknown NHANES cycle {label!r}; known cycles: {', '.join(CYCLES)}"
        ) from None


def check_poolable(labels: list[str]) -> list[Cycle]:
    """Return the cycles for labels, refusing duplicates and overlapping releases."""
    if len(set(labels)) != len(labels):
        raise ConfigError(f"cohort.cycles lists a cycle twice: {labels}")
    for pair in OVERLAPPING:
        if pair <= set(labels):
            raise ConfigError(
                f"cohort.cycles pools overlapping releases {sorted(pair)}: "
                "2017-March 2020 already contains 2017-2018"
            )
    return [get_cycle(label) for label in labels]


def pooled_weight_factor(cycle: Cycle, cycles: list[Cycle]) -> float:
    """NCHS rule for pooled weights: the cycle's share of the total survey years.

    For k two-year cycles this is 1/k; with the 3.2-year 2017-March 2020 release it is
    3.2 / total years, as the NCHS tutorials prescribe.
    """
    return cycle.years / sum(c.years for c in cycles)
