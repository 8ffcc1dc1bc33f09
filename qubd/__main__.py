"""``python -m qubd``: the ``qubd`` command (also under ``torchrun ... -m qubd score ...``); with no
arguments, ``qubd doctor``."""

import gc
import sys

# Importing torch and scipy makes ~200,000 objects that live as long as the process. The cyclic
# collector would scan them all a few times while importing and once more at exit (~0.3 s: as
# long as scoring 15,000 small tensors). It is paused while importing, and what the imports made is
# then set aside (gc.freeze): later collections scan only what the command makes.
gc.disable()
from qubd.cli import main  # noqa: E402

gc.freeze()
gc.enable()
raise SystemExit(main(sys.argv[1:] or ["doctor"]))
