"""``python -m qubd``: the ``qubd`` command (also under ``torchrun ... -m qubd score ...``); with no
arguments, ``qubd doctor``."""

import sys

from qubd.cli import main

raise SystemExit(main(sys.argv[1:] or ["doctor"]))
