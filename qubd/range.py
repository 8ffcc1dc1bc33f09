"""Stage 1: the quantisation range [lo, hi] of a weight tensor, and the grid it defines.

Min/max (``torch.ops.qubd.value_bounds``: one pass, the finite check included), or robust clipping
at percentile ``clip``: ``lo, hi = quantile(W, q), quantile(W, 1 - q)`` with ``q = (1 - clip/100) / 2``
and exactly ``torch.quantile``'s linear interpolation, for tensors of any size (``torch.quantile``
itself refuses more than 2**24 elements). The order statistics the quantiles interpolate come from
the caller (the op layer passes ``torch.ops.qubd.order_statistics``), so this module imports nothing
of the ops that use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
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
    """``value_range`` of each tensor (all on one device). Without clipping, the bounds of all
    tensors come from one ``value_bounds`` call: one device sync, not one per tensor. ``names``
    label the tensors in errors (default ``weights[i]``)."""
    names = names if names is not None else [f"weights[{i}]" for i in range(len(ws))]
    if clip is not None:
        ranges = []
        for w, name in zip(ws, names, strict=True):
            try:
                ranges.append(value_range(w, clip, order_statistics))
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        return ranges
    bounds = _min_max(ws, names)
    return [
        (lo.to(compute_dtype(w.dtype)), hi.to(compute_dtype(w.dtype)))
        for w, (lo, hi) in zip(ws, bounds, strict=True)
    ]


def _min_max(ws: Sequence[torch.Tensor], names: Sequence[str]) -> torch.Tensor:
    """float64 [len(ws), 2] on the CPU: each tensor's min and max, from ``qubd::value_bounds`` (one
    pass per tensor, the finite check included); ValueError naming the first tensor with NaN or Inf
    values."""
    # Looked up in torch's dispatcher, not imported: the op layer that declares it imports this module.
    bounds = torch.ops.qubd.value_bounds(list(ws)).detach().cpu()
    finite = np.isfinite(bounds.numpy()).all(axis=1)
    if not finite.all():
        raise ValueError(f"{names[int(np.argmin(finite))]} contain NaN or Inf values")
    return bounds


def quant_grids(
    ws: Sequence[torch.Tensor],
    clip: float | None,
    bits: int,
    order_statistics: OrderStatistics,
    names: Sequence[str] | None = None,
) -> list[QuantGrid]:
    """``quant_grid(*value_range(w, clip), bits)`` of each tensor of ``ws``, labelled by ``names``
    in errors (default ``weights[i]``). Without clipping the grids of all tensors come from a few
    tensor ops in all, not a few per tensor (hundreds of thousands of small tensors)."""
    names = names if names is not None else [f"weights[{i}]" for i in range(len(ws))]
    if clip is not None:
        ranges = value_ranges(ws, clip, order_statistics, names)
        return [
            _grids(_array(lo), _array(hi), bits, [name])[0]
            for (lo, hi), name in zip(ranges, names, strict=True)
        ]
    bounds = _min_max(ws, names)
    by_dtype: dict[torch.dtype, list[int]] = {}
    for i, w in enumerate(ws):
        by_dtype.setdefault(compute_dtype(w.dtype), []).append(i)
    grids: list[QuantGrid] = [None] * len(ws)  # type: ignore[list-item]
    for dtype, where in by_dtype.items():
        part = (bounds if len(where) == len(ws) else bounds[where]).to(dtype).numpy()
        for i, grid in zip(
            where, _grids(part[:, 0], part[:, 1], bits, [names[i] for i in where]), strict=True
        ):
            grids[i] = grid
    return grids


def quant_grid(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> QuantGrid:
    """The grid of ``bits``-bit codes over [lo, hi], with delta computed in the compute dtype."""
    return _grids(_array(lo), _array(hi), bits, None)[0]


def _array(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().reshape(1).numpy()


def _grids(lo: np.ndarray, hi: np.ndarray, bits: int, names: Sequence[str] | None) -> list[QuantGrid]:
    """The grid over each [lo[i], hi[i]] (1-D arrays of the compute dtype), elementwise in that
    dtype: IEEE operations, so the same numbers as torch's, and no torch op per tensor."""
    real = lo.dtype.type
    with np.errstate(over="ignore"):  # an overflowing span is the error below
        span = hi - lo
    finite = np.isfinite(span)
    if not finite.all():
        i = int(np.argmin(finite))
        label = "" if names is None else f"{names[i]}: "
        raise ValueError(
            f"{label}the weight range [{lo[i]}, {hi[i]}] is wider than {torch.from_numpy(span).dtype} can "
            "hold; scale the weights or pass float64"
        )
    # The scalars in the compute dtype, as torch casts a Python scalar to the tensor's dtype.
    delta = np.where(span < real(MIN_SPAN), real(np.inf), span / real(2**bits - 1))
    return [QuantGrid(lo=a, delta=d) for a, d in zip(lo.tolist(), delta.tolist(), strict=True)]
