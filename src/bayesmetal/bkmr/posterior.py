"""The BKMR posterior contract, written once: which variables a BKMR fit's InferenceData
holds, with their dims, whichever engine drew it. The declaration, both engines, the
diagnostics and the summaries read the names from here.
"""

from __future__ import annotations

BETA = "beta"  # covariate coefficients (no intercept: h carries the level, as in R)
SIGMA_SQ = "sigma_sq"  # residual variance (gaussian only: the probit latent variance is 1)
LAMBDA = "lambda"  # tau / sigma2, the GP's variance ratio
R = "r"  # kernel inverse length-scales, r_m = delta_m rho_m under selection
DELTA = "delta"  # inclusion indicators
PI = "pi"  # prior inclusion probability
LAMBDA_RI = "lambda_ri"  # random-intercept variance / sigma2
YSTAR = "ystar"  # probit latent outcome (Gibbs engine)
H = "h"  # h at the data (the PyMC probit declaration)

H_JITTER = 1e-6  # PyMC probit declaration: h at the data ~ N(0, lambda K + H_JITTER I)


def variables(
    has_covariates: bool,
    probit: bool,
    selection: bool,
    random_intercept: bool,
    engine: str,
) -> dict[str, tuple[str, ...]]:
    """Variable -> dims of a BKMR posterior; per-observation variables (ystar, h) last."""
    contract: dict[str, tuple[str, ...]] = {BETA: ("coef",)} if has_covariates else {}
    if not probit:
        contract[SIGMA_SQ] = ()
    contract |= {LAMBDA: (), R: ("exposure",)}
    if random_intercept:
        contract[LAMBDA_RI] = ()
    if selection:
        contract |= {DELTA: ("exposure",), PI: ()}
    if probit:
        contract[YSTAR if engine == "bkmr-gibbs" else H] = ("obs",)
    return contract
