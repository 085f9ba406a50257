"""Simulation-based calibration (SBC; Talts et al. 2018, Modrak et al. 2023) of the project's
samplers: the BKMR Gibbs sampler in each of its variants and the PyMC GLM and BWQS models.

`run_sbc` simulates and fits the replicates and returns every rank; `uniformity_table` tests
each parameter's ranks for uniformity; `write_sbc` writes tables and figures.
"""

from bayesmetal.calibration.ranks import (
    chi_square_uniformity,
    ecdf_uniformity,
    sbc_ranks,
    thin_indices,
    uniformity_table,
    variant_verdicts,
)
from bayesmetal.calibration.runner import VARIANTS, SbcSettings, run_sbc, write_sbc

__all__ = [
    "VARIANTS",
    "SbcSettings",
    "chi_square_uniformity",
    "ecdf_uniformity",
    "run_sbc",
    "sbc_ranks",
    "thin_indices",
    "uniformity_table",
    "variant_verdicts",
    "write_sbc",
]
