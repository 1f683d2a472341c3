#!/usr/bin/env python3
"""A `$BROWSER` that opens nothing and counts: it appends the URL it was given to the file
that BROWSER_RECORD names, one line for each tab a real browser would have opened.

Usage: tab_counter.py URL. Stdlib only (it runs under whatever `python3` is first on PATH).
"""

from __future__ import annotations

import os
import sys

with open(os.environ["BROWSER_RECORD"], "a", encoding="utf-8") as record:
    record.write(sys.argv[1] + "\n")
