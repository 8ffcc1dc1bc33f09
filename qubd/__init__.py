"""qubd: exact, fast algorithmic complexity (BDM / QuBD) of neural-network weights."""

from qubd import bdm, ops
from qubd.bdm import BDM

__version__ = "0.1.0"
__all__ = ["BDM", "bdm", "ops"]
