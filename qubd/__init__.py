"""qubd: exact, fast algorithmic complexity (BDM / QuBD) of neural-network weights."""

from qubd import bdm, ops
from qubd.bdm import BDM
from qubd.report import ComplexityTracker, Report, score
from qubd.report.describe import describe

__version__ = "0.1.0"
__all__ = ["BDM", "ComplexityTracker", "Report", "bdm", "describe", "ops", "score"]
