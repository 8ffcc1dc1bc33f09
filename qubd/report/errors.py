"""The error of scoring: a complete sentence, naming the tensor or file concerned."""


class ReportError(Exception):
    """Nothing to score, NaN/Inf weights, an impossible baseline, an unreadable report, ..."""
