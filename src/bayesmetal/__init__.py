"""bayesmetal: declarative Bayesian analyses of metal mixtures and bone outcomes in NHANES."""

__version__ = "0.1.0"
