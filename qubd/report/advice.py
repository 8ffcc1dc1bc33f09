"""Bit-depth advice for post-training quantization, from where the structure is.

The paper finds the algorithmic information of trained weights in the most significant bit-planes:
there a plane is simpler than the same plane of the shuffled weights, while the low planes are as
complex as noise. The advice keeps every plane from the lowest one that is clearly below its baseline
up to the most significant one.
"""

from __future__ import annotations

from dataclasses import dataclass

from qubd.report.summary import Summary

NOISE_SIGMAS = 3.0
RULE = (
    "a plane is below baseline when its QuBD ratio is under 100% by more than "
    f"max({{margin}} percentage points, {NOISE_SIGMAS:g} std of the baseline over --repeats); "
    "suggested bits = the planes from the lowest plane below baseline up to the most significant"
)


@dataclass(frozen=True)
class BitDepthAdvice:
    """``planes_below``: planes (0 = least significant) clearly below the baseline; ``suggested_bits``:
    ``bits - min(planes_below)``, or None when no plane is below (no structure found)."""

    suggested_bits: int | None
    planes_below: list[int]


def rule(margin: float) -> str:
    return RULE.format(margin=f"{margin:g}")


def below_baseline(summary: Summary, margin: float) -> list[int]:
    """Planes whose ratio is under ``100 - max(margin, 3 sigma)`` percent, sigma the baseline's std
    over runs as a percentage of its mean (0 with a single run)."""
    ratio = summary.ratio
    if ratio is None:
        return []
    stds = summary.baseline_std or [0.0] * len(ratio)
    below = []
    for plane, (r, base, std) in enumerate(zip(ratio, summary.baseline, stds, strict=True)):
        noise = NOISE_SIGMAS * 100.0 * std / base if base > 0 else 0.0
        if r is not None and r < 100.0 - max(margin, noise):
            below.append(plane)
    return below


def advise(summary: Summary, margin: float) -> BitDepthAdvice | None:
    """The advice for per-plane ``summary``; None without a baseline."""
    if summary.baseline is None:
        return None
    below = below_baseline(summary, margin)
    return BitDepthAdvice(len(summary.values) - min(below) if below else None, below)
