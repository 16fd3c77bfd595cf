#!/usr/bin/env python
"""speechbench's one entry point: `python run_all.py --help`."""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
