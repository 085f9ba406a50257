"""Download public NHANES files from CDC into <dest>/<cycle>/<NAME>.XPT.

python scripts/fetch_nhanes.py --cycles 2013-2014 2015-2016 --components DXX PAQ --dest data/nhanes
"""

import sys

from bayesmetal.cli import fetch_main

if __name__ == "__main__":
    sys.exit(fetch_main())
