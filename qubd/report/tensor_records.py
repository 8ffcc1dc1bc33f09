"""The QuBD fields of each tensor's entry in a JSON report (per-plane scores, baseline, ratios,
z-scores, total, advice), for all of a report's tensors at once.

Through ``TensorScore.summary()`` and ``.total()`` an entry costs a few numpy calls and objects
(~60 µs a tensor: 6 s for 100,000 small tensors). With the closed-form baseline every tensor has its
mean and std per plane, so the same fields come from one numpy expression each over ``[tensors,
planes]`` arrays. The operations are those of ``qubd.report.summary`` for one tensor, element by
element (a row's sum is a reduction over that row alone), so every number is the same double;
tests/test_small_tensors.py checks them against each tensor scored and summarised on its own.
Sampled baselines (runs) keep the per-tensor summaries.
"""

from __future__ import annotations

import numpy as np

from qubd.report.advice import NOISE_SIGMAS, advise
from qubd.report.measure import BDM
from qubd.report.scores import TensorScore, plane_scores
from qubd.report.summary import Summary

PERCENT = 100.0


def bdm_fields(tensors: list[TensorScore], margin: float) -> list[dict]:
    """For each scored tensor, in order: ``planes``, ``baseline_planes``, ``baseline_planes_std``,
    ``ratios``, ``z``, ``baseline_runs``, ``total``, ``suggested_bits``, ``planes_below_baseline``
    (the order of a JSON report's tensor entries)."""
    if _closed_form(tensors):
        return _closed_form_fields(tensors, margin)
    return [_summary_fields(t, margin) for t in tensors]


def vector_fields(summary: Summary, runs: list[list[float]], key: str) -> dict:
    """A per-plane vector and its baseline, as the report writes ``summary`` of one tensor."""
    return {
        key: summary.values,
        f"baseline_{key}": summary.baseline,
        f"baseline_{key}_std": summary.baseline_std,
        "ratios": summary.ratio,
        "z": summary.z,
        "baseline_runs": runs,
    }


def total_fields(bdm: float, baseline: float | None, std: float | None, ratio, z) -> dict:
    return {"bdm": bdm, "baseline": baseline, "baseline_std": std, "ratio": ratio, "z": z}


def _summary_fields(t: TensorScore, margin: float) -> dict:
    summary = t.summary()
    total = plane_scores(t.total(), total=True)[0]
    advice = advise(summary, margin)
    return vector_fields(summary, [run[BDM] for run in t.baseline_runs], "planes") | {
        "total": total_fields(total.bdm, total.baseline, total.baseline_std, total.ratio, total.z),
        "suggested_bits": advice.suggested_bits if advice else None,
        "planes_below_baseline": advice.planes_below if advice else None,
    }


def _closed_form(tensors: list[TensorScore]) -> bool:
    """Every tensor has the closed-form baseline of its planes, and all have as many planes."""
    if not tensors or not all(BDM in t.expected for t in tensors):
        return False
    planes = len(tensors[0].values[BDM])
    return all(len(t.values[BDM]) == planes == len(t.expected[BDM].mean) for t in tensors)


def _closed_form_fields(tensors: list[TensorScore], margin: float) -> list[dict]:
    values = np.array([t.values[BDM] for t in tensors], dtype=np.float64)
    means = np.array([t.expected[BDM].mean for t in tensors], dtype=np.float64)
    stds = np.array([t.expected[BDM].std for t in tensors], dtype=np.float64)
    # summarize_expected of one tensor: its variances summed over one tensor, rooted.
    std = np.sqrt(np.square(stds))
    ratio, z = _ratio_z(values, means, std)
    # summarize_expected_totals: each row summed, then summarize_expected of that one value.
    total = values.sum(axis=1)
    total_mean = means.sum(axis=1)
    total_std = np.sqrt(np.square(np.sqrt(np.square(stds).sum(axis=1))))
    total_ratio, total_z = _ratio_z(total, total_mean, total_std)
    has_ratio, has_z = means > 0, std > 0
    below = _below_baseline(ratio, has_ratio, z, has_z, margin)
    planes = values.shape[1]
    rows = zip(
        values.tolist(),
        means.tolist(),
        std.tolist(),
        _or_none(ratio, has_ratio),
        _or_none(z, has_z),
        total.tolist(),
        total_mean.tolist(),
        total_std.tolist(),
        _or_none(total_ratio, total_mean > 0),
        _or_none(total_z, total_std > 0),
        below,
        strict=True,
    )
    return [
        {
            "planes": v,
            "baseline_planes": m,
            "baseline_planes_std": s,
            "ratios": r,
            "z": zs,
            "baseline_runs": [],
            "total": total_fields(tv, tm, ts, tr, tz),
            "suggested_bits": planes - min(b) if b else None,
            "planes_below_baseline": b,
        }
        for v, m, s, r, zs, tv, tm, ts, tr, tz, b in rows
    ]


def _ratio_z(values: np.ndarray, means: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Summary.ratio`` and ``Summary.z`` elementwise (their None entries are masked by the caller)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return PERCENT * values / means, (values - means) / std


def _or_none(x: np.ndarray, defined: np.ndarray) -> list:
    """``x`` as (nested) lists of floats, None where not ``defined``."""
    out = x.astype(object)
    out[~defined] = None
    return out.tolist()


def _below_baseline(
    ratio: np.ndarray, has_ratio: np.ndarray, z: np.ndarray, has_z: np.ndarray, margin: float
) -> list[list[int]]:
    """``advice.below_baseline`` of each row: the ratio defined and under ``100 - margin``, and z
    undefined (a zero std) or under ``-NOISE_SIGMAS``. NaN compares false, as in Python."""
    with np.errstate(invalid="ignore"):
        below = has_ratio & (ratio < PERCENT - margin) & (~has_z | (z < -NOISE_SIGMAS))
    planes: list[list[int]] = [[] for _ in range(len(below))]
    for row, plane in zip(*np.nonzero(below), strict=True):
        planes[row].append(int(plane))
    return planes
