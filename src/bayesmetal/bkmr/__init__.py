"""BKMR (Bobb et al. 2015): kernel, collapsed likelihood, fast sampler, h predictions."""
