"""The range of each tensor: its smallest and largest value, the bounds of min/max quantisation."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def value_bounds(ws: Sequence[torch.Tensor]) -> torch.Tensor:
    """float64 ``[len(ws), 2]`` on the tensors' device: each tensor's min and max, zeros as +0.0.
    A row holds a NaN or an infinity exactly when its tensor does (torch.aminmax propagates NaN).
    The reductions of all tensors are queued before one copy: one device sync, not one per tensor."""
    extremes = [torch.aminmax(w) for w in ws]
    by_dtype: dict[torch.dtype, list[int]] = {}
    for i, w in enumerate(ws):
        by_dtype.setdefault(w.dtype, []).append(i)
    # float64 holds every float32/bf16/fp16 value exactly, so one table serves every dtype.
    bounds = torch.empty(len(ws), 2, dtype=torch.float64, device=ws[0].device)
    for where in by_dtype.values():
        stacked = torch.stack([x for i in where for x in extremes[i]]).view(-1, 2)
        if len(where) == len(ws):
            bounds.copy_(stacked)
        else:
            bounds[where] = stacked.to(torch.float64)
    return bounds.add_(0.0)  # -0.0 + 0.0 = +0.0: a zero bound carries no sign
