"""Decomposition stage: pybdm's partition classes, which cut 1D or 2D data into blocks and count them.

* :class:`PartitionIgnore` (pybdm's ``PartitionIgnore``): non-overlapping blocks of ``shape`` from
  the origin; the leftover cells at the end (1D) or the bottom/right edges (2D) are dropped.
* :class:`PartitionRecursive` (``PartitionRecursive``): like ignore, but every leftover part (a
  slice of the ``shape`` grid that is cut short by the edge) of shape ``(p, q)`` is decomposed
  again with square blocks of side ``min(p, q)``, recursively, and dropped once that side is below
  ``min_length``.
* :class:`PartitionCorrelated` (``PartitionCorrelated``): a sliding window of ``shape`` moved by
  ``shift`` along each axis; only windows that fit are kept.

:meth:`Partition.decompose` returns the blocks as :class:`~qubd.bdm.blocks.BlockGroup` s (one per
block shape; block order is not pybdm's, as BDM and entropy only depend on the multiset of blocks),
by reshapes, slices and ``unfold`` on tensors of any device. :meth:`Partition.decompose_and_count`
counts them, each partition by its fastest route: 2D binary 4x4 blocks through the block-code
histogram op ``qubd.ops.plane_histograms``, correlated windows by their codes straight from the data,
k-ary 1D blocks by the native kernels (:mod:`qubd.bdm.native`), anything else by decomposing and
counting (:mod:`qubd.bdm.counts`).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import ClassVar

import torch

from qubd import ops as qops
from qubd.bdm import native
from qubd.bdm.blocks import BlockGroup, sliding_codes
from qubd.bdm.counts import BlockCounts, count_blocks
from qubd.bdm.inputs import check_int_option

# The blocks that ``qubd.ops.plane_histograms`` counts (binary ones).
HISTOGRAM_SHAPE = (4, 4)

# (block shape, the same blocks cut from each of the tensors decomposed together: symbols, cell index)
_Parts = list[tuple[tuple[int, ...], list[torch.Tensor]]]


class Partition:
    """A way of cutting data into blocks of ``shape`` (square), as pybdm's partition classes."""

    name: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()
    overlapping: ClassVar[bool] = False  # whether a cell may lie in several blocks

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self.params)})"

    @property
    def params(self) -> list[str]:
        """``name=value`` of the shape and every option (pybdm's ``params``)."""
        return [f"shape={self.shape}"] + [f"{name}={getattr(self, name)}" for name in self.options]

    def decompose(self, x: torch.Tensor, with_index: bool = False) -> list[BlockGroup]:
        """The blocks of symbols ``x`` (1D or 2D), grouped by block shape (no empty groups).

        ``with_index``: also the flat position in ``x`` of every cell of every block.
        """
        tensors = [x]
        if with_index:
            tensors.append(torch.arange(x.numel(), device=x.device).reshape(x.shape))
        return _grouped(self._parts([t.unsqueeze(0) for t in tensors]), with_index)

    def _parts(self, tensors: list[torch.Tensor]) -> _Parts:
        """The blocks of a batch of one slab [1, *x.shape] per tensor."""
        raise NotImplementedError

    def decompose_and_count(self, x: torch.Tensor, nsymbols: int) -> BlockCounts:
        """Decompose ``x`` and count its distinct raw blocks."""
        return count_blocks(self.decompose(x), nsymbols)

    def _by_histogram(self, x: torch.Tensor, nsymbols: int) -> bool:
        """Whether ``x`` holds blocks that ``qubd.ops.plane_histograms`` counts (binary, 4x4)."""
        return nsymbols == 2 and self.shape == HISTOGRAM_SHAPE and min(x.shape) >= HISTOGRAM_SHAPE[0]

    def part_shapes(self, data_shape: tuple[int, ...]) -> Counter:
        """pybdm's ``partition._iter_shapes(X)`` counted: the part shapes that bound normalised values.

        The base class (which pybdm's recursive partition does not override) lists *every* slice of
        the non-overlapping grid, including those cut short by the edges. Integer arithmetic only.
        """
        s = self.shape[0]
        per_axis = []
        for n in data_shape:
            sizes = [(s, n // s)] if n // s else []
            if n % s:
                sizes.append((n % s, 1))
            per_axis.append(sizes)
        shapes: Counter = Counter()
        for combo in itertools.product(*per_axis):
            shapes[tuple(size for size, _ in combo)] += math.prod(count for _, count in combo)
        return shapes


class PartitionIgnore(Partition):
    """Non-overlapping blocks from the origin; the cells the grid cuts short are dropped."""

    name = "ignore"

    def _parts(self, tensors: list[torch.Tensor]) -> _Parts:
        tile = _tiles_1d if tensors[0].ndim == 2 else _tiles_2d
        return [(self.shape, [tile(t, self.shape[0]) for t in tensors])]

    def decompose_and_count(self, x: torch.Tensor, nsymbols: int) -> BlockCounts:
        if self._by_histogram(x, nsymbols):
            hist = qops.plane_histograms(x, 1)
            counted = BlockCounts(histogram=hist)
            counted.add_histogram(self.shape, hist[0])
            return counted
        # Binary 1D codes (at most 2**12) are counted by bincount at least as fast.
        if x.ndim == 1 and nsymbols > 2 and native.available(x):
            codes, counts = native.block_counts(x, self.shape[0], nsymbols)
            return BlockCounts({self.shape: codes}, {self.shape: counts})
        return super().decompose_and_count(x, nsymbols)

    def part_shapes(self, data_shape: tuple[int, ...]) -> Counter:
        n = super().part_shapes(data_shape)[self.shape]
        return Counter({self.shape: n} if n else {})


class PartitionRecursive(Partition):
    """Ignore's blocks, then the parts cut short by the edges decomposed again with smaller square
    blocks, down to sides of ``min_length`` (default 2)."""

    name = "recursive"
    options = ("min_length",)

    def __init__(self, shape: tuple[int, ...], min_length: int = 2) -> None:
        super().__init__(shape)
        self.min_length = check_int_option(min_length, "min_length", 0)

    def _parts(self, tensors: list[torch.Tensor], full: bool = True) -> _Parts:
        found: _Parts = []
        _recursive(tensors, self.shape[0], self.min_length, found, full)
        return found

    def decompose_and_count(self, x: torch.Tensor, nsymbols: int) -> BlockCounts:
        if not self._by_histogram(x, nsymbols):
            return super().decompose_and_count(x, nsymbols)
        # The full 4x4 blocks through the block-code histogram, the recursion on the edges generically.
        s = self.shape[0]
        rows, cols = x.shape[0] // s * s, x.shape[1] // s * s
        hist = qops.plane_histograms(x[:rows, :cols], 1)[0]
        counted = count_blocks(_grouped(self._parts([x.unsqueeze(0)], full=False), False), nsymbols)
        counted.add_histogram(self.shape, hist)
        return counted


class PartitionCorrelated(Partition):
    """A sliding window of ``shape`` moved by ``shift`` (default 1) along each axis."""

    name = "correlated"
    options = ("shift",)
    overlapping = True

    def __init__(self, shape: tuple[int, ...], shift: int = 1) -> None:
        super().__init__(shape)
        self.shift = check_int_option(shift, "shift", 1)

    def _parts(self, tensors: list[torch.Tensor]) -> _Parts:
        s = self.shape[0]
        if min(tensors[0].shape[1:]) < s:
            return []
        windows = []
        for t in tensors:
            t = t[0]
            for axis in range(t.ndim):
                t = t.unfold(axis, s, self.shift)
            windows.append(t.reshape(-1, math.prod(self.shape)))
        return [(self.shape, windows)]

    def decompose_and_count(self, x: torch.Tensor, nsymbols: int) -> BlockCounts:
        # Window codes straight from the data, without a [windows, L] copy.
        counted = BlockCounts()
        if min(x.shape) >= self.shape[0]:
            codes = sliding_codes(x, self.shape[0], self.shift, nsymbols)
            counted.add_codes(self.shape, codes, nsymbols)
        return counted

    def part_shapes(self, data_shape: tuple[int, ...]) -> Counter:
        raise ValueError(
            "the correlated partition has no normalised BDM or entropy (pybdm: NotImplementedError)"
        )


PARTITIONS: dict[str, type[Partition]] = {
    cls.name: cls for cls in (PartitionIgnore, PartitionRecursive, PartitionCorrelated)
}


def make_partition(
    partition: str | type[Partition], shape: tuple[int, ...], **options: int | None
) -> Partition:
    """The partition named ``partition`` (or of that class) with ``shape``; options left None take
    their defaults, and one given to a partition without it is an error."""
    cls = PARTITIONS.get(partition) if isinstance(partition, str) else partition
    if not (isinstance(cls, type) and issubclass(cls, Partition) and cls is not Partition):
        raise ValueError(
            f"partition must be one of {tuple(PARTITIONS)} or a Partition class, got {partition!r}"
        )
    given = {name: value for name, value in options.items() if value is not None}
    for name in given:
        if name not in cls.options:
            owners = [c.name for c in PARTITIONS.values() if name in c.options]
            raise ValueError(
                f"{name} applies to the {' / '.join(owners)} partition only (partition={cls.name!r})"
            )
    return cls(shape, **given)


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


def _recursive(tensors: list[torch.Tensor], s: int, min_length: int, out: _Parts, full: bool = True) -> None:
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


def _grouped(found: _Parts, with_index: bool) -> list[BlockGroup]:
    """One group per shape (the recursive partition reaches some shapes along several paths)."""
    by_shape: dict[tuple[int, ...], list[list[torch.Tensor]]] = {}
    for part_shape, ts in found:
        if ts[0].shape[0]:
            by_shape.setdefault(part_shape, []).append(ts)
    groups = []
    for part_shape, lists in by_shape.items():
        blocks = torch.cat([ts[0] for ts in lists]) if len(lists) > 1 else lists[0][0]
        index = None
        if with_index:
            index = torch.cat([ts[1] for ts in lists]) if len(lists) > 1 else lists[0][1]
        groups.append(BlockGroup(part_shape, blocks, index))
    return groups
