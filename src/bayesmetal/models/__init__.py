"""Model builders: each module declares DEFAULT priors and a build function (no sampling)."""
