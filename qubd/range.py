"""Stage 1: the quantisation range [lo, hi] of a weight tensor, and the grid it defines.

Min/max, or robust clipping at percentile ``clip``: ``lo, hi = quantile(W, q), quantile(W, 1 - q)``
with ``q = (1 - clip/100) / 2`` and exactly ``torch.quantile``'s linear interpolation, for tensors of
any size (``torch.quantile`` itself refuses more than 2**24 elements). The order statistics the
quantiles interpolate come from the caller (the op layer passes ``torch.ops.qubd.order_statistics``),
so this module imports nothing of the ops that use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

# torch.quantile computes ranks in the input's float type; float32 counts exactly up to here.
FLOAT32_EXACT_COUNT = 1 << 24
# Below this span every weight is quantised to code 0 (paper; the planes are still scored).
MIN_SPAN = 1e-8

# ``order_statistics(w, ranks)``: the sorted values of ``w`` at 0-based ``ranks``, in the compute dtype.
OrderStatistics = Callable[[torch.Tensor, list[int]], torch.Tensor]


@dataclass(frozen=True)
class QuantGrid:
    """Quantisation grid: a ``bits``-bit code is clamp(round_half_even((w - lo) / delta), 0, 2**bits - 1).

    ``lo`` and ``delta`` hold values of the compute dtype (float32, or float64 for float64 weights).
    ``delta`` is +inf for a (near-)constant tensor, which sends every weight to code 0.
    """

    lo: float
    delta: float


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Arithmetic is float32 at least: bf16/fp16 are upcast, float64 stays float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _quantile_rank(n: int, q: float, dtype: torch.dtype) -> tuple[int, int, torch.Tensor]:
    """torch.quantile's rank q*(n-1): below/above indices and the interpolation weight."""
    if n <= FLOAT32_EXACT_COUNT or dtype == torch.float64:
        rank = torch.tensor(q, dtype=dtype) * (n - 1)
    else:  # n - 1 is no longer exact in float32: compute the rank in float64 (docs/design.md 1.2 step 2)
        rank = torch.tensor(q, dtype=torch.float64) * (n - 1)
    below = int(torch.floor(rank).item())
    above = int(torch.ceil(rank).item())
    return below, above, (rank - below).to(dtype).reshape(1)


def clip_range(
    n: int, clip: float, dtype: torch.dtype, select: Callable[[list[int]], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)``: the ``clip`` quantiles of ``n`` values of compute dtype ``dtype``, given
    ``select(ranks)``, their sorted values at those 0-based ranks (one process's
    ``order_statistics``, or the distributed one of ``qubd.distributed``)."""
    q = (1 - clip / 100) / 2
    ranks = [_quantile_rank(n, p, dtype) for p in (q, 1 - q)]
    wanted = sorted({r for below, above, _ in ranks for r in (below, above)})
    values = select(wanted).to("cpu", dtype)
    at = {r: values[i].reshape(1) for i, r in enumerate(wanted)}
    lo, hi = (torch.lerp(at[below], at[above], weight)[0] for below, above, weight in ranks)
    return lo, hi


def value_range(
    w: torch.Tensor, clip: float | None, order_statistics: OrderStatistics
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)`` as 0-d CPU tensors of the compute dtype. Raises ValueError on NaN/Inf weights."""
    if clip is None:
        return value_ranges([w], None, order_statistics, names=["weights"])[0]
    return clip_range(w.numel(), clip, compute_dtype(w.dtype), lambda ranks: order_statistics(w, ranks))


def value_ranges(
    ws: Sequence[torch.Tensor],
    clip: float | None,
    order_statistics: OrderStatistics,
    names: Sequence[str] | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``value_range`` of each tensor (all on one device). Without clipping, the min/max reductions
    of all tensors are queued first and copied to the host together: one device sync, not one per
    tensor. ``names`` label the tensors in errors (default ``weights[i]``)."""
    names = names if names is not None else [f"weights[{i}]" for i in range(len(ws))]
    if clip is not None:
        ranges = []
        for w, name in zip(ws, names, strict=True):
            try:
                ranges.append(value_range(w, clip, order_statistics))
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        return ranges
    # float64 holds every float32/bf16/fp16 value exactly, so one stacked copy serves every dtype.
    bounds = torch.stack([torch.stack(torch.aminmax(w)).to(torch.float64) for w in ws]).cpu()
    ranges = []
    for w, name, (lo, hi) in zip(ws, names, bounds, strict=True):
        if not (torch.isfinite(lo) and torch.isfinite(hi)):
            raise ValueError(f"{name} contain NaN or Inf values")
        dtype = compute_dtype(w.dtype)
        ranges.append((lo.to(dtype), hi.to(dtype)))
    return ranges


def quant_grid(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> QuantGrid:
    """The grid of ``bits``-bit codes over [lo, hi], with delta computed in the compute dtype."""
    span = hi - lo
    if not torch.isfinite(span):
        raise ValueError(
            f"the weight range [{lo.item()}, {hi.item()}] is wider than {span.dtype} can hold; "
            "scale the weights or pass float64"
        )
    if span < MIN_SPAN:
        return QuantGrid(lo=lo.item(), delta=math.inf)
    delta = span / (2**bits - 1)
    return QuantGrid(lo=lo.item(), delta=delta.item())
