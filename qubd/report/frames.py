"""Reports as pandas DataFrames (the optional ``pandas`` extra): one row per tensor and plane, and
one row per plane summed over the model, as WeightWatcher's per-layer frames are used in notebooks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from qubd.report.scores import PlaneScore, ReportData, plane_scores

if TYPE_CHECKING:
    import pandas as pd

TENSOR_COLUMNS = (
    "name",
    "shape",
    "dtype",
    "plane",
    "qubd",
    "baseline",
    "baseline_std",
    "ratio",
    "z_score",
    "skipped",
)
PLANE_COLUMNS = ("plane", "qubd", "baseline", "baseline_std", "ratio", "z_score", "below_baseline")


def require_pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "to_pandas needs pandas, which is not installed: pip install 'qubd[pandas]'"
        ) from None
    return pandas


def z_score(p: PlaneScore) -> float | None:
    """How many baseline standard deviations the QuBD lies from the baseline's mean; None where the
    baseline gives no standard deviation (a single run, or no baseline) or a zero one."""
    if p.baseline is None or not p.baseline_std:
        return None
    return (p.bdm - p.baseline) / p.baseline_std


def _plane_values(p: PlaneScore) -> list:
    return [p.plane, p.bdm, p.baseline, p.baseline_std, p.ratio, z_score(p)]


def tensor_frame(report: ReportData) -> pd.DataFrame:
    """One row per scored tensor and plane (plane 0 = least significant), and one row per skipped
    tensor (plane and numbers missing, ``skipped`` its reason). ``shape`` is a tuple."""
    pandas = require_pandas()
    rows = []
    for t in report.tensors:
        if t.skipped is not None:
            rows.append([t.name, tuple(t.shape), t.dtype, None, None, None, None, None, None, t.skipped])
            continue
        for p in plane_scores(t.summary()):
            rows.append([t.name, tuple(t.shape), t.dtype, *_plane_values(p), None])
    frame = pandas.DataFrame(rows, columns=list(TENSOR_COLUMNS))
    frame["plane"] = frame["plane"].astype("Int64")
    return _floats(frame, ("qubd", "baseline", "baseline_std", "ratio", "z_score"))


def plane_frame(report: ReportData) -> pd.DataFrame:
    """One row per plane summed over the scored tensors; ``below_baseline`` as in the bit-depth advice."""
    pandas = require_pandas()
    advice = report.advice
    below = set(advice.planes_below) if advice else set()
    rows = [[*_plane_values(p), p.plane in below] for p in report.planes]
    frame = pandas.DataFrame(rows, columns=list(PLANE_COLUMNS))
    return _floats(frame, ("qubd", "baseline", "baseline_std", "ratio", "z_score"))


def _floats(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Missing numbers as NaN in float64 columns (not object columns of None)."""
    for column in columns:
        frame[column] = [math.nan if v is None else float(v) for v in frame[column]]
    return frame
