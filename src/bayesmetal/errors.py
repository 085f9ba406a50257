"""Exceptions raised for bad input; every message names the file, column or config key."""


class BayesmetalError(Exception):
    """Base class for errors a user can fix by changing input or configuration."""


class ConfigError(BayesmetalError):
    """A configuration file is invalid (unknown key, wrong type, impossible value)."""


class DataError(BayesmetalError):
    """A data file or column is missing or holds values the analysis cannot use."""


class FetchError(BayesmetalError):
    """A download failed or returned something that is not a valid NHANES file."""
