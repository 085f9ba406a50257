"""Descriptive tables of a cohort: python scripts/describe.py CONFIG --out DIR."""

import sys

from bayesmetal.cli import describe_main

if __name__ == "__main__":
    sys.exit(describe_main())
