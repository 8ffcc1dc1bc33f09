"""qubd: exact, fast algorithmic complexity (BDM / QuBD) of neural-network weights."""

from qubd import ops

__version__ = "0.1.0"
__all__ = ["ops"]
