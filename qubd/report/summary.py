"""Sums over tensors, baseline mean and std over runs, and ratios (paper Eq. 14), for any measure."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qubd.report.errors import ReportError


@dataclass(frozen=True)
class Summary:
    """A measure summed over tensors: ``values[i]`` per plane (or one value), against the baseline.

    ``baseline``: the mean over runs of the runs' sums, or the sum of closed-form means (None without
    a baseline); ``baseline_std``: the runs' sample standard deviation (None with fewer than two
    runs), or the closed-form one (independent tensors: variances add).
    """

    values: list[float]
    baseline: list[float] | None = None
    baseline_std: list[float] | None = None

    @property
    def ratio(self) -> list[float | None] | None:
        """``100 * value / baseline`` per entry, in percent; None without a baseline."""
        if self.baseline is None:
            return None
        return [100.0 * v / b if b > 0 else None for v, b in zip(self.values, self.baseline, strict=True)]

    @property
    def z(self) -> list[float | None] | None:
        """``(value - baseline) / baseline_std`` per entry: how many standard deviations the value lies
        from a random arrangement (negative: simpler). None without a std; None where it is 0."""
        if self.baseline is None or self.baseline_std is None:
            return None
        return [
            (v - b) / s if s > 0 else None
            for v, b, s in zip(self.values, self.baseline, self.baseline_std, strict=True)
        ]


def float_rows(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """``np.asarray(rows, dtype=np.float64)`` of rows of one length (ValueError otherwise, as
    np.asarray's), ~3x faster for many short lists (a report of 100,000 small tensors)."""
    if isinstance(rows, np.ndarray) or not len(rows):
        return np.asarray(rows, dtype=np.float64)
    widths = set(map(len, rows))
    if len(widths) > 1:
        raise ValueError("the rows have different lengths")
    (width,) = widths
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width)
    return flat.reshape(len(rows), width)


def summarize(values: Sequence[Sequence[float]], runs: Sequence[Sequence[Sequence[float]]]) -> Summary:
    """``values[t]``: tensor t's vector; ``runs[t][r]``: its baseline's vector in run r (all tensors
    have the same number of runs; none for no baseline). Sums over tensors, mean/std over runs.
    ReportError when there is no tensor: a sum over none has no length (no planes to show)."""
    if len(values) == 0:
        raise ReportError("nothing to sum: no scored tensors")
    total = np.sum(np.asarray(values, dtype=np.float64), axis=0)
    n_runs = len(runs[0]) if len(runs) else 0
    if n_runs == 0:
        return Summary(total.tolist())
    run_totals = np.sum(np.asarray(runs, dtype=np.float64), axis=0)  # [runs, k]
    std = run_totals.std(axis=0, ddof=1).tolist() if n_runs > 1 else None
    return Summary(total.tolist(), run_totals.mean(axis=0).tolist(), std)


def summarize_totals(values: Sequence[Sequence[float]], runs: Sequence[Sequence[Sequence[float]]]) -> Summary:
    """Like ``summarize`` for the sum over each vector's entries (a tensor's total over planes)."""
    return summarize(
        [[float(np.sum(v))] for v in values],
        [[[float(np.sum(run))] for run in tensor_runs] for tensor_runs in runs],
    )


def summarize_expected(
    values: Sequence[Sequence[float]], means: Sequence[Sequence[float]], stds: Sequence[Sequence[float]]
) -> Summary:
    """Like ``summarize`` for closed-form baselines: tensor t's ``means[t]`` and ``stds[t]`` per entry.
    Tensors are shuffled independently, so means and variances add over tensors."""
    if len(values) == 0:
        raise ReportError("nothing to sum: no scored tensors")
    # The arrays' own .sum (np.sum's wrapper costs more than the sum of one tensor's few planes).
    total = float_rows(values).sum(axis=0)
    mean = float_rows(means).sum(axis=0)
    std = np.sqrt(np.square(float_rows(stds)).sum(axis=0))
    return Summary(total.tolist(), mean.tolist(), std.tolist())


def summarize_expected_totals(
    values: Sequence[Sequence[float]], means: Sequence[Sequence[float]], stds: Sequence[Sequence[float]]
) -> Summary:
    """Like ``summarize_expected`` for each vector's sum over its entries (a tensor's total over
    planes). The planes' variances are added: their covariance under a shuffle is neglected
    (docs/baselines.md gives the check against sampling)."""
    if len(values) == 0:
        raise ReportError("nothing to sum: no scored tensors")
    # One reduction over all the tensors' rows: the same doubles as np.sum of each row, without a
    # numpy call per tensor (a report of 100,000 small tensors).
    return summarize_expected(
        float_rows(values).sum(axis=1, keepdims=True),
        float_rows(means).sum(axis=1, keepdims=True),
        np.sqrt(np.square(float_rows(stds)).sum(axis=1, keepdims=True)),
    )
