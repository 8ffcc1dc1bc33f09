"""Per-tensor notes on how the range was handled where the plain rule does not apply: a span below
1e-8 (every weight is code 0, DESIGN.md step 3) and a range too wide for float32 (quantised in float64
rather than refused). The report and the table show them beside the tensor."""

from __future__ import annotations

import torch

from qubd.range import needs_float64, span_below_minimum

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
