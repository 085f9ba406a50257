"""Fit a configured model: python scripts/fit.py configs/<analysis>.yaml."""

import sys

from bayesmetal.cli import fit_main

if __name__ == "__main__":
    sys.exit(fit_main())
