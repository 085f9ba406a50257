"""Run a whole study: python scripts/study.py configs/studies/<study>.yaml [--dry-run]."""

import sys

from bayesmetal.study_cli import study_main

if __name__ == "__main__":
    sys.exit(study_main())
