"""Decomposition stage: cutting a 1D or 2D array into blocks, as pybdm's partition classes do.

* ``ignore`` (``PartitionIgnore``): non-overlapping blocks of ``shape`` from the origin; the
  leftover cells at the end (1D) or the bottom/right edges (2D) are dropped.
* ``recursive`` (``PartitionRecursive``): like ignore, but every leftover part (a slice of the
  ``shape`` grid that is cut short by the edge) of shape ``(p, q)`` is decomposed again with square
  blocks of side ``min(p, q)``, recursively, and dropped once that side is below ``min_length``.
* ``correlated`` (``PartitionCorrelated``): a sliding window of ``shape`` moved by ``shift`` along
  each axis; only windows that fit are kept.

Blocks come out as :class:`BlockGroup` s (one per block shape): the symbols of every block, one per
row (2D blocks row-major), and optionally the flat position in ``x`` of every cell. Block order is
not pybdm's (BDM and entropy only depend on the multiset of blocks). All operations are reshapes,
slices and ``unfold`` on tensors of any device.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass

import torch

PARTITIONS = ("ignore", "recursive", "correlated")


@dataclass(frozen=True)
class BlockGroup:
    """All blocks of one shape: ``blocks`` [P, L] symbols, ``index`` [P, L] flat cell positions."""

    shape: tuple[int, ...]
    blocks: torch.Tensor
    index: torch.Tensor | None = None


def _tiles_1d(t: torch.Tensor, s: int) -> torch.Tensor:
    """[B, a] -> [B * (a // s), s]: the full blocks of every row."""
    n = t.shape[1] // s
    return t[:, : n * s].reshape(-1, s)


def _tiles_2d(t: torch.Tensor, s: int) -> torch.Tensor:
    """[B, a, b] -> [B * (a // s) * (b // s), s * s]: the full s x s blocks of every slab, row-major."""
    rows, cols = t.shape[1] // s, t.shape[2] // s
    t = t[:, : rows * s, : cols * s].reshape(t.shape[0], rows, s, cols, s)
    return t.permute(0, 1, 3, 2, 4).reshape(-1, s * s)


def _leftovers_2d(t: torch.Tensor, s: int) -> list[torch.Tensor]:
    """The parts of each slab of ``t`` [B, a, b] that the s x s grid cuts short, as batches [B', p, q]."""
    batch, a, b = t.shape
    rows, cols = a // s, b // s
    ra, rb = a - rows * s, b - cols * s
    parts = []
    if rb and rows:  # right edge: (s, rb) parts, one per block row
        parts.append(t[:, : rows * s, cols * s :].reshape(batch * rows, s, rb))
    if ra and cols:  # bottom edge: (ra, s) parts, one per block column
        bottom = t[:, rows * s :, : cols * s].reshape(batch, ra, cols, s)
        parts.append(bottom.permute(0, 2, 1, 3).reshape(batch * cols, ra, s))
    if ra and rb:  # corner
        parts.append(t[:, rows * s :, cols * s :])
    return parts


def _recursive(
    tensors: list[torch.Tensor], s: int, min_length: int, out: list[tuple], full: bool = True
) -> None:
    """pybdm's ``PartitionRecursive._decompose`` on a batch of equally shaped parts.

    ``tensors``: the same batch [B, a] or [B, a, b] of values and (optionally) of cell indices.
    ``full=False`` leaves out this level's full s x s blocks (counted elsewhere).
    """
    if tensors[0].ndim == 2:  # 1D parts
        if full:
            out.append(((s,), [_tiles_1d(t, s) for t in tensors]))
        rest = tensors[0].shape[1] % s
        if rest and rest >= min_length:  # the tail is one block of its own length
            out.append(((rest,), [t[:, -rest:] for t in tensors]))
        return
    if full:
        out.append(((s, s), [_tiles_2d(t, s) for t in tensors]))
    leftovers = [_leftovers_2d(t, s) for t in tensors]
    for parts in zip(*leftovers, strict=True):
        side = min(parts[0].shape[1:])
        if side >= min_length:
            _recursive(list(parts), side, min_length, out)


def decompose(
    x: torch.Tensor,
    shape: tuple[int, ...],
    partition: str,
    shift: int = 1,
    min_length: int = 2,
    with_index: bool = False,
    leftovers_only: bool = False,
) -> list[BlockGroup]:
    """Blocks of ``x`` (1D or 2D) under a pybdm partition, grouped by block shape (no empty groups).

    ``leftovers_only`` (recursive only): leave out the full blocks of ``shape`` from the origin,
    i.e. return only what the recursion makes of the edges.
    """
    s = shape[0]
    tensors = [x]
    if with_index:
        tensors.append(torch.arange(x.numel(), device=x.device).reshape(x.shape))
    found: list[tuple[tuple[int, ...], list[torch.Tensor]]] = []
    if partition == "ignore":
        tile = _tiles_1d if x.ndim == 1 else _tiles_2d
        found.append((shape, [tile(t.unsqueeze(0), s) for t in tensors]))
    elif partition == "recursive":
        _recursive([t.unsqueeze(0) for t in tensors], s, min_length, found, full=not leftovers_only)
    elif partition == "correlated":
        if min(x.shape) >= s:
            windows = []
            for t in tensors:
                for axis in range(x.ndim):
                    t = t.unfold(axis, s, shift)
                windows.append(t.reshape(-1, s**x.ndim))
            found.append((shape, windows))
    else:
        raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
    # One group per shape (the recursive partition reaches some shapes along several paths).
    by_shape: dict[tuple[int, ...], list[list[torch.Tensor]]] = {}
    for part_shape, ts in found:
        if ts[0].shape[0]:
            by_shape.setdefault(part_shape, []).append(ts)
    groups = []
    for part_shape, lists in by_shape.items():
        blocks = torch.cat([ts[0] for ts in lists]) if len(lists) > 1 else lists[0][0]
        index = (
            (torch.cat([ts[1] for ts in lists]) if len(lists) > 1 else lists[0][1]) if with_index else None
        )
        groups.append(BlockGroup(part_shape, blocks, index))
    return groups


def slice_shapes(data_shape: tuple[int, ...], shape: tuple[int, ...], partition: str) -> Counter:
    """pybdm's ``partition._iter_shapes(X)`` counted: part shapes used to normalise BDM/entropy.

    For ``ignore`` the full blocks; for ``recursive`` (which does not override the base class) *every*
    slice of the non-overlapping grid, including those cut short by the edges, whatever
    ``min_length`` is. Pure integer arithmetic on the shape.
    """
    if partition == "correlated":
        raise ValueError(
            "the correlated partition has no normalised BDM or entropy (pybdm: NotImplementedError)"
        )
    s = shape[0]
    per_axis = []
    for n in data_shape:
        sizes = [(s, n // s)] if n // s else []
        if n % s:
            sizes.append((n % s, 1))
        per_axis.append(sizes)
    shapes: Counter = Counter()
    for combo in itertools.product(*per_axis):
        part = tuple(size for size, _ in combo)
        if partition == "ignore" and part != tuple(shape):
            continue
        shapes[part] += math.prod(count for _, count in combo)
    return shapes
