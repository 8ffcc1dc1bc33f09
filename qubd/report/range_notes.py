"""Per-tensor notes on how the range was handled where the plain rule does not apply: a span below
1e-8 (every weight is code 0, docs/design.md 1.2 step 3) and a range too wide for float32
(quantised in float64 rather than refused). The report and the table show them beside the tensor."""

from __future__ import annotations

import torch

from qubd import ops  # noqa: F401  (declares torch.ops.qubd)
from qubd.range import MIN_SPAN, compute_dtype, value_range

FLOAT64_GRID = "quantised in float64 (range too wide for float32)"
TINY_SPAN = "span below 1e-8: all codes 0"


def widened(w: torch.Tensor, clip: float | None) -> torch.Tensor | None:
    """``w`` in float64 when its (finite) range overflows float32, else None."""
    return w.to(torch.float64) if needs_float64(w, clip) else None


def tiny_span_note(w: torch.Tensor, planes: list[float], clip: float | None) -> str | None:
    """TINY_SPAN when ``w``'s span is below the threshold. Only a tensor whose planes all scored the
    same is checked (all-zero planes do), so the range of other tensors is not computed again."""
    if len(set(planes)) != 1:
        return None
    return TINY_SPAN if span_below_minimum(w, clip) else None


def needs_float64(w: torch.Tensor, clip: float | None) -> bool:
    """True when the finite weights ``w`` have a range whose grid float32 cannot hold (``hi - lo``
    overflows, e.g. weights near +-3.4e38): such a tensor is quantised in float64 instead."""
    if compute_dtype(w.dtype) == torch.float64:
        return False
    lo, hi = value_range(w, clip, torch.ops.qubd.order_statistics)
    return not bool(torch.isfinite(hi - lo))


def span_below_minimum(w: torch.Tensor, clip: float | None) -> bool:
    """True when ``w``'s span is below ``MIN_SPAN``: every weight is quantised to code 0."""
    lo, hi = value_range(w, clip, torch.ops.qubd.order_statistics)
    return bool(hi - lo < MIN_SPAN)
