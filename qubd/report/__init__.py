"""Scoring models and checkpoints into reports: per tensor and plane, totals, baselines and ratios
(paper Eq. 14), bit-depth advice; JSON / CSV / plots; ``ComplexityTracker`` for training runs and
``score_series`` for a run's saved checkpoints."""

from qubd.report.advice import BitDepthAdvice
from qubd.report.errors import ReportError
from qubd.report.options import ScoreOptions
from qubd.report.report import Report
from qubd.report.scores import PlaneScore, TensorScore
from qubd.report.scoring import score, score_source
from qubd.report.series import score_series
from qubd.report.tracker import ComplexityTracker

__all__ = [
    "BitDepthAdvice",
    "ComplexityTracker",
    "PlaneScore",
    "Report",
    "ReportError",
    "ScoreOptions",
    "TensorScore",
    "score",
    "score_series",
    "score_source",
]
