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

from dataclasses import dataclass

import numpy as np

from qubd.report.advice import NOISE_SIGMAS, advise
from qubd.report.measure import BDM
from qubd.report.scores import TensorScore, plane_scores
from qubd.report.summary import Summary, float_rows

PERCENT = 100.0


def bdm_fields(tensors: list[TensorScore], margin: float) -> list[dict]:
    """For each scored tensor, in order: ``planes``, ``baseline_planes``, ``baseline_planes_std``,
    ``ratios``, ``z``, ``baseline_runs``, ``total``, ``suggested_bits``, ``planes_below_baseline``
    (the order of a JSON report's tensor entries)."""
    closed_form = closed_form_fields(tensors, margin)
    if closed_form is not None:
        return _closed_form_dicts(closed_form)
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


@dataclass(frozen=True)
class ClosedFormFields:
    """The QuBD fields of many tensors with the closed-form baseline: ``[tensors, planes]`` arrays
    (``values``, ``means``, ``std``, ``ratio``, ``z``) and ``[tensors]`` totals, ``has_*`` where
    a ratio or z is defined (elsewhere, a zero mean or std, the report has None), and each tensor's
    planes below the baseline."""

    values: np.ndarray
    means: np.ndarray
    std: np.ndarray
    ratio: np.ndarray
    has_ratio: np.ndarray
    z: np.ndarray
    has_z: np.ndarray
    total: np.ndarray
    total_mean: np.ndarray
    total_std: np.ndarray
    total_ratio: np.ndarray
    total_has_ratio: np.ndarray
    total_z: np.ndarray
    total_has_z: np.ndarray
    below: list[list[int]]

    def suggested_bits(self, below: list[int]) -> int | None:
        return self.values.shape[1] - min(below) if below else None


def closed_form_fields(tensors: list[TensorScore], margin: float) -> ClosedFormFields | None:
    """The fields of ``bdm_fields`` as arrays, when every tensor has the closed-form baseline of its
    planes and all have as many planes; else None."""
    if not _closed_form(tensors):
        return None
    values = float_rows([t.values[BDM] for t in tensors])
    means = float_rows([t.expected[BDM].mean for t in tensors])
    stds = float_rows([t.expected[BDM].std for t in tensors])
    # summarize_expected of one tensor: its variances summed over one tensor, rooted.
    std = np.sqrt(np.square(stds))
    ratio, z = _ratio_z(values, means, std)
    # summarize_expected_totals: each row summed, then summarize_expected of that one value.
    total = values.sum(axis=1)
    total_mean = means.sum(axis=1)
    total_std = np.sqrt(np.square(np.sqrt(np.square(stds).sum(axis=1))))
    total_ratio, total_z = _ratio_z(total, total_mean, total_std)
    has_ratio, has_z = means > 0, std > 0
    return ClosedFormFields(
        values=values,
        means=means,
        std=std,
        ratio=ratio,
        has_ratio=has_ratio,
        z=z,
        has_z=has_z,
        total=total,
        total_mean=total_mean,
        total_std=total_std,
        total_ratio=total_ratio,
        total_has_ratio=total_mean > 0,
        total_z=total_z,
        total_has_z=total_std > 0,
        below=_below_baseline(ratio, has_ratio, z, has_z, margin),
    )


def _closed_form_dicts(f: ClosedFormFields) -> list[dict]:
    rows = zip(
        f.values.tolist(),
        f.means.tolist(),
        f.std.tolist(),
        _or_none(f.ratio, f.has_ratio),
        _or_none(f.z, f.has_z),
        f.total.tolist(),
        f.total_mean.tolist(),
        f.total_std.tolist(),
        _or_none(f.total_ratio, f.total_has_ratio),
        _or_none(f.total_z, f.total_has_z),
        f.below,
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
            "suggested_bits": f.suggested_bits(b),
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
