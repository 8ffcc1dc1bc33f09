"""Stage 1: the quantisation range [lo, hi] of a weight tensor, and the grid it defines.

Min/max (``torch.ops.qubd.value_bounds``: one pass, the finite check included), or robust clipping
at percentile ``clip``: ``lo, hi = quantile(W, q), quantile(W, 1 - q)`` with ``q = (1 - clip/100) / 2``
and exactly ``torch.quantile``'s linear interpolation, for tensors of any size (``torch.quantile``
itself refuses more than 2**24 elements). The order statistics the quantiles interpolate come from
the caller (the op layer passes ``torch.ops.qubd.order_statistics``), so this module imports nothing
of the ops that use it; those of many small tensors at once from ``order_statistics_batched``, looked
up in torch's dispatcher as ``value_bounds`` is. Batched or not, a tensor's range has the same bits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

# torch.quantile computes ranks in the input's float type; float32 counts exactly up to here.
FLOAT32_EXACT_COUNT = 1 << 24
# Below this span every weight is quantised to code 0 (paper; the planes are still scored).
MIN_SPAN = 1e-8

# Every refusal of NaN or Inf weights says this (the backends' own words), after the tensor's name.
NON_FINITE = "weights contain NaN or Inf values"

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


# Tensors of at most this many values have their clipped ranges selected together, in one
# ``order_statistics_batched`` call (hundreds of thousands of small tensors: one dispatch, not one
# each); a larger tensor's selection, whose call costs nothing beside its passes, one at a time.
# The native kernel's kSmallSelect (csrc/cpu/order_statistics.cpp) switches method at this size too.
BATCHED_SELECT_MAX = 1 << 16


@dataclass(frozen=True)
class _ClipRanks:
    """What ``clip`` of ``n`` values asks for: the distinct ranks wanted (ascending), and for the
    lower and upper quantile torch.quantile's below and above rank (as positions in ``wanted``) and
    interpolation weight."""

    wanted: list[int]
    positions: tuple[int, int, int, int]  # lower below, lower above, upper below, upper above
    weights: torch.Tensor  # [2] of the compute dtype


def _quantile_rank(n: int, q: float, dtype: torch.dtype) -> tuple[int, int, torch.Tensor]:
    """torch.quantile's rank q*(n-1): below/above indices and the interpolation weight."""
    if n <= FLOAT32_EXACT_COUNT or dtype == torch.float64:
        rank = torch.tensor(q, dtype=dtype) * (n - 1)
    else:  # n - 1 is no longer exact in float32: compute the rank in float64 (docs/design.md 1.2 step 2)
        rank = torch.tensor(q, dtype=torch.float64) * (n - 1)
    below = int(torch.floor(rank).item())
    above = int(torch.ceil(rank).item())
    return below, above, (rank - below).to(dtype).reshape(1)


@functools.lru_cache(maxsize=1024)  # a model's small tensors share a few sizes
def _clip_ranks(n: int, clip: float, dtype: torch.dtype) -> _ClipRanks:
    q = (1 - clip / 100) / 2
    quantiles = [_quantile_rank(n, p, dtype) for p in (q, 1 - q)]
    wanted = sorted({r for below, above, _ in quantiles for r in (below, above)})
    positions = tuple(wanted.index(r) for below, above, _ in quantiles for r in (below, above))
    return _ClipRanks(wanted, positions, torch.cat([weight for _, _, weight in quantiles]))  # type: ignore[arg-type]


def _interpolate(ranks: Sequence[_ClipRanks], values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[len(ranks), 2] CPU tensor of ``dtype``: each tensor's (lo, hi), torch.quantile's lerp of
    ``values``, the sorted values at each ``ranks[i].wanted``, one tensor's after another."""
    values = values.to("cpu", dtype)
    counts = np.array([len(r.wanted) for r in ranks])
    at = np.array([r.positions for r in ranks]).reshape(-1, 4) + (np.cumsum(counts) - counts)[:, None]
    # Into a strided output, so that torch runs its scalar loop on every element: the bits of
    # torch.quantile's lerp of one value, however many tensors there are.
    out = torch.empty(2 * len(ranks), 2, dtype=dtype)[:, 0]
    below, above = torch.from_numpy(at[:, 0::2].reshape(-1)), torch.from_numpy(at[:, 1::2].reshape(-1))
    torch.lerp(values[below], values[above], torch.cat([r.weights for r in ranks]), out=out)
    return out.reshape(len(ranks), 2)


def clip_range(
    n: int, clip: float, dtype: torch.dtype, select: Callable[[list[int]], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)``: the ``clip`` quantiles of ``n`` values of compute dtype ``dtype``, given
    ``select(ranks)``, their sorted values at those 0-based ranks (one process's
    ``order_statistics``, or the distributed one of ``qubd.distributed``)."""
    ranks = _clip_ranks(n, clip, dtype)
    lo, hi = _interpolate([ranks], select(list(ranks.wanted)), dtype)[0]
    return lo, hi


def value_range(
    w: torch.Tensor, clip: float | None, order_statistics: OrderStatistics
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)`` as 0-d CPU tensors of the compute dtype. Raises ValueError (``NON_FINITE``, no
    name) on NaN/Inf weights."""
    if clip is None:
        lo, hi = _min_max([w], None)[0].to(compute_dtype(w.dtype))
        return lo, hi
    return clip_range(w.numel(), clip, compute_dtype(w.dtype), lambda ranks: order_statistics(w, ranks))


def value_ranges(
    ws: Sequence[torch.Tensor],
    clip: float | None,
    order_statistics: OrderStatistics,
    names: Sequence[str] | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``value_range`` of each tensor (all on one device), from a few ops in all: without clipping,
    one ``value_bounds`` call (one device sync, not one per tensor); with it, one
    ``order_statistics_batched`` call for the small tensors and ``order_statistics`` for each
    large one. ``names`` label the tensors in errors (default ``weights[i]``)."""
    ranges: list[tuple[torch.Tensor, torch.Tensor]] = [None] * len(ws)  # type: ignore[list-item]
    for where, bounds in _ranges(ws, clip, order_statistics, names):
        for i, (lo, hi) in zip(where, bounds, strict=True):
            ranges[i] = (lo, hi)
    return ranges


def _ranges(
    ws: Sequence[torch.Tensor],
    clip: float | None,
    order_statistics: OrderStatistics,
    names: Sequence[str] | None,
) -> list[tuple[list[int], torch.Tensor]]:
    """Groups of tensors of one compute dtype: which tensors, and their (lo, hi) as a [count, 2] CPU
    tensor of that dtype. ValueError naming the first tensor (in order) with NaN or Inf values."""
    names = names if names is not None else [f"weights[{i}]" for i in range(len(ws))]
    dtypes = [compute_dtype(w.dtype) for w in ws]
    if clip is None:
        bounds = _min_max(ws, names)
        return [(where, bounds[where].to(dtype)) for dtype, where in _by_dtype(dtypes, range(len(ws)))]
    groups = []
    small = [i for i, w in enumerate(ws) if w.numel() <= BATCHED_SELECT_MAX]
    first_bad = len(ws)
    if small:
        first_bad, groups = _clipped_small(ws, small, dtypes, clip)
    for i, w in enumerate(ws[:first_bad]):
        if w.numel() > BATCHED_SELECT_MAX:
            try:
                groups.append(([i], torch.stack(value_range(w, clip, order_statistics)).reshape(1, 2)))
            except ValueError as err:
                raise ValueError(f"{_label(names, i)}{err}") from None
    if first_bad < len(ws):
        raise _non_finite(names, first_bad)
    return groups


def _by_dtype(dtypes: Sequence[torch.dtype], indices: Sequence[int]) -> list[tuple[torch.dtype, list[int]]]:
    """``indices`` grouped by ``dtypes[i]``, in order within each group."""
    groups: dict[torch.dtype, list[int]] = {}
    for i in indices:
        groups.setdefault(dtypes[i], []).append(i)
    return list(groups.items())


def _clipped_small(
    ws: Sequence[torch.Tensor], small: list[int], dtypes: list[torch.dtype], clip: float
) -> tuple[int, list[tuple[list[int], torch.Tensor]]]:
    """The clipped ranges of the tensors ``small`` from one ``order_statistics_batched`` call,
    grouped as ``_ranges`` returns them, and the first of them with NaN or Inf values (``len(ws)``
    if none; the ranges are then not to be used)."""
    ranks = {i: _clip_ranks(ws[i].numel(), clip, dtypes[i]) for i in small}
    # Looked up in torch's dispatcher, not imported: the op layer that declares it imports this module.
    values = torch.ops.qubd.order_statistics_batched([ws[i] for i in small], [ranks[i].wanted for i in small])
    values = values.detach().cpu()
    counts = [len(ranks[i].wanted) for i in small]
    finite = np.isfinite(values.numpy())
    first_bad = len(ws) if finite.all() else int(np.repeat(small, counts)[np.argmin(finite)])
    groups = []
    for dtype, where in _by_dtype(dtypes, small):
        if len(where) == len(small):
            picked = values
        else:
            picked = values[torch.from_numpy(np.repeat([dtypes[i] == dtype for i in small], counts))]
        groups.append((where, _interpolate([ranks[i] for i in where], picked, dtype)))
    return first_bad, groups


def _label(names: Sequence[str] | None, i: int) -> str:
    """``"name: "`` to put before an error about tensor ``i``; nothing without a name."""
    return f"{names[i]}: " if names and names[i] else ""


def _non_finite(names: Sequence[str] | None, i: int) -> ValueError:
    """The refusal of tensor ``i``'s NaN or Inf values, after its name (if it has one)."""
    return ValueError(_label(names, i) + NON_FINITE)


def _min_max(ws: Sequence[torch.Tensor], names: Sequence[str] | None) -> torch.Tensor:
    """float64 [len(ws), 2] on the CPU: each tensor's min and max, from ``qubd::value_bounds`` (one
    pass per tensor, the finite check included); ValueError naming the first tensor with NaN or Inf
    values (as ``_non_finite``)."""
    # Looked up in torch's dispatcher, not imported: the op layer that declares it imports this module.
    bounds = torch.ops.qubd.value_bounds(list(ws)).detach().cpu()
    finite = np.isfinite(bounds.numpy()).all(axis=1)
    if not finite.all():
        raise _non_finite(names, int(np.argmin(finite)))
    return bounds


def quant_grids(
    ws: Sequence[torch.Tensor],
    clip: float | None,
    bits: int,
    order_statistics: OrderStatistics,
    names: Sequence[str] | None = None,
) -> list[QuantGrid]:
    """``quant_grid(*value_range(w, clip), bits)`` of each tensor of ``ws``, labelled by ``names``
    in errors (default ``weights[i]``; an empty name: the message alone): the grids of all tensors
    come from a few tensor ops in all, not a few per tensor (hundreds of thousands of small tensors)."""
    names = names if names is not None else [f"weights[{i}]" for i in range(len(ws))]
    grids: list[QuantGrid] = [None] * len(ws)  # type: ignore[list-item]
    for where, bounds in _ranges(ws, clip, order_statistics, names):
        part = bounds.numpy()
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
        raise ValueError(
            f"{_label(names, i)}the weight range [{lo[i]}, {hi[i]}] is wider than"
            f" {torch.from_numpy(span).dtype} can hold; scale the weights or pass float64"
        )
    # The scalars in the compute dtype, as torch casts a Python scalar to the tensor's dtype.
    delta = np.where(span < real(MIN_SPAN), real(np.inf), span / real(2**bits - 1))
    return [QuantGrid(lo=a, delta=d) for a, d in zip(lo.tolist(), delta.tolist(), strict=True)]
