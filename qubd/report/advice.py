"""Bit-depth advice for post-training quantization, from where the structure is.

The paper finds the algorithmic information of trained weights in the most significant bit-planes:
there a plane is simpler than the same plane of the shuffled weights, while the low planes are as
complex as noise. A plane carries structure when its QuBD lies clearly below its baseline (a random
arrangement of the same values); the advice reports those planes, and that quantising to fewer bits
than "from the lowest such plane up to the most significant" would cut into the structure.
"""

from __future__ import annotations

from dataclasses import dataclass

from qubd.report.summary import Summary

NOISE_SIGMAS = 3.0
RULE = (
    "a plane carries structure when its QuBD is both more than {margin} percentage points under 100% "
    f"of the baseline and more than {NOISE_SIGMAS:g} standard deviations below it (z < -{NOISE_SIGMAS:g}; "
    "the std is the closed form's, or the spread over --repeats runs; with one sampled run only the "
    "margin applies); the structure spans the planes from the lowest such plane to the most significant"
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
    """Planes whose ratio is under ``100 - margin`` percent and whose z-score is under -3 (when the
    baseline has a std; a zero std leaves only the margin)."""
    ratio = summary.ratio
    if ratio is None:
        return []
    zs = summary.z or [None] * len(ratio)
    return [
        plane
        for plane, (r, z) in enumerate(zip(ratio, zs, strict=True))
        if r is not None and r < 100.0 - margin and (z is None or z < -NOISE_SIGMAS)
    ]


def advise(summary: Summary, margin: float) -> BitDepthAdvice | None:
    """The advice for per-plane ``summary``; None without a baseline."""
    if summary.baseline is None:
        return None
    below = below_baseline(summary, margin)
    return BitDepthAdvice(len(summary.values) - min(below) if below else None, below)


def describe(advice: BitDepthAdvice, bits: int) -> str:
    """The advice in words: what was found, and what it suggests."""
    if advice.suggested_bits is None:
        return (
            "No bit-plane is clearly simpler than a random arrangement of the same values: "
            "no structure found to guide a bit depth."
        )
    planes = ", ".join(str(p) for p in sorted(advice.planes_below, reverse=True))
    kept = advice.suggested_bits
    return (
        f"Structure beyond a random arrangement of the same values in plane(s) {planes} "
        f"(plane {bits - 1} the most significant): it lies in the top {kept} of {bits} bits, so "
        f"quantising below {kept} bit{'s' * (kept != 1)} would cut into it."
    )
