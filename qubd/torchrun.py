"""Whether this process is one of several that torchrun started, and which of them speaks: read from
the environment alone (no process group, no torch.distributed import), so that the CLI can decide it
even while reporting an error."""

from __future__ import annotations

import os

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that torchrun (or another ``env://`` launcher) started."""
    return all(v in os.environ for v in TORCHRUN_VARIABLES)


def writes_outputs() -> bool:
    """Only rank 0 writes files and prints (known from the environment, before any group exists)."""
    return not launched_by_torchrun() or os.environ["RANK"] == "0"
