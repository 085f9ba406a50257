"""The one place where messages of dependencies are silenced, for the command line only (`cli`
enters `quiet_dependencies` around a command; importing bayesmetal changes no filter).

Silenced, because they are known and harmless here:
- PyTensor's "PyTensor could not link to a BLAS installation" (UserWarning, once per
  process, at the first compile) and "Using NumPy C-API based implementation for BLAS
  functions" (a log record, said when a GEMM Op is compiled without BLAS; not seen with
  these models, silenced in case). The cause is the environment, not bayesmetal: PyTensor
  installed by pip finds no system BLAS to link its C code against (the development machine
  has none: `ldconfig -p` lists no libblas/libopenblas), and its matrix products then call
  NumPy, which carries its own OpenBLAS. The models' matrices are small, and the README's
  timings were measured this way. A conda install of PyTensor links a BLAS and says neither.
- PyMC's progress chatter ("Initializing NUTS", "Multiprocess sampling", "NUTS: [...]",
  "Sampling ... took N seconds"), INFO records that repeat for every fit of a run: its
  progress bar says the same. `--verbose` keeps them. PyMC's warnings still show.

Fixed at the source instead: ArviZ's RuntimeWarnings ("invalid value encountered in scalar
divide") came from asking for the R-hat of parameters that never change (a BKMR r_m or delta
that stays 0); `arviz_api.convergence_table` no longer asks.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

BLAS_WARNING = r"PyTensor could not link to a BLAS installation"
BLAS_LOG = "Using NumPy C-API based implementation for BLAS functions"
BLAS_LOGGER = "pytensor.tensor.blas"
PYMC_LOGGER = "pymc"


class _DropMessage(logging.Filter):
    """Drops the log records whose message starts with `prefix`."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


@contextlib.contextmanager
def quiet_dependencies(verbose: bool = False) -> Iterator[None]:
    """Within the block, the messages listed in the module's docstring are not shown (PyMC's
    INFO records only without `verbose`); every filter and level is restored on leaving."""
    blas_logger = logging.getLogger(BLAS_LOGGER)
    pymc_logger = logging.getLogger(PYMC_LOGGER)
    drop = _DropMessage(BLAS_LOG)
    level = pymc_logger.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=BLAS_WARNING, category=UserWarning)
        blas_logger.addFilter(drop)
        if not verbose:
            pymc_logger.setLevel(max(level, logging.WARNING))
        try:
            yield
        finally:
            blas_logger.removeFilter(drop)
            pymc_logger.setLevel(level)
