"""``python -m qubd`` (and ``torchrun ... -m qubd score ...``): the ``qubd`` command."""

from qubd.cli import main

raise SystemExit(main())
