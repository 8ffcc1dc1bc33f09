"""The ``BDM`` class: pybdm's ``BDM`` (same options, same numbers), vectorised with torch.

The pipeline has pybdm's four stages, each a method:

1. **decompose** (:meth:`BDM.decompose`): cut the data into blocks (:mod:`qubd.bdm.partitions`);
2. **count** (:meth:`BDM.count`): encode each block as an integer (:mod:`qubd.bdm.blocks`) and
   count distinct raw blocks (``bincount`` for small code spaces, ``unique`` otherwise);
3. **look up** (:meth:`BDM.lookup`): CTM value of each distinct block (:mod:`qubd.bdm.lookup`);
4. **aggregate** (:meth:`BDM.compute_bdm`, :meth:`BDM.compute_ent`): sum of CTM + log2(count),
   or the entropy of the counts.

pybdm looks up before counting; counting first looks up each distinct block once, which gives
the same sums. 2D binary data with the ignore partition and 4x4 blocks take the fast path:
``qubd.ops.plane_histograms`` (a 65,536-bin histogram of block codes) and ``qubd.ctm.ctm_score``;
with the recursive partition the full 4x4 blocks are counted the same way. The correlated
partition's window codes come from Horner's rule on shifted views of the data
(:func:`qubd.bdm.blocks.sliding_codes`). k-ary 1D data with the ignore partition are counted (and
looked up) by the native kernels on CPU tensors (:mod:`qubd.bdm.native`).
Data may be numpy arrays or torch tensors on any device; results are Python floats (float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from qubd import ops as qops
from qubd.bdm import native, normalize
from qubd.bdm.blocks import encode_blocks, sliding_codes
from qubd.bdm.inputs import as_symbols, check_int_option
from qubd.bdm.lookup import MISSING_POLICIES, CTMLookup
from qubd.bdm.partitions import PARTITIONS, BlockGroup, decompose, slice_shapes
from qubd.ctm.score import ctm_score
from qubd.ctm.tables import load_table

# Code spaces up to this size are counted with bincount, larger ones with unique.
_BINCOUNT_LIMIT = 1 << 20
_TABLES = {
    (1, 2): "ctm-b2-d12",
    (1, 4): "ctm-b4-d12",
    (1, 5): "ctm-b5-d12",
    (1, 6): "ctm-b6-d12",
    (1, 9): "ctm-b9-d12",
    (2, 2): "ctm-b2-d4x4",
}


@dataclass(frozen=True)
class BlockCounts:
    """Count stage output: per block shape, the distinct raw block codes (sorted) and their counts.

    ``digits`` (large code spaces only): the symbols of one block per distinct code, which spares
    the lookup stage decoding them. ``histogram`` is set on the 2D fast path: the full [1, 65536]
    histogram of 4x4 block codes.
    """

    codes: dict[tuple[int, ...], torch.Tensor]
    counts: dict[tuple[int, ...], torch.Tensor]
    digits: dict[tuple[int, ...], torch.Tensor] = field(default_factory=dict)
    histogram: torch.Tensor | None = None

    @property
    def total(self) -> int:
        """Number of blocks counted."""
        return int(sum(int(c.sum()) for c in self.counts.values()))


class BDM:
    """Block Decomposition Method, equal to ``pybdm.BDM`` with the matching partition class.

    Parameters
    ----------
    ndim : 1 or 2
        Number of axes of the data.
    nsymbols : 2, 4, 5, 6 or 9 (1D); 2 (2D)
        Alphabet size; data hold symbols ``0..nsymbols-1``. Picks pybdm's CTM table:
        ``ctm-b{nsymbols}-d12`` (1D, blocks of 12) or ``ctm-b2-d4x4`` (2D, 4x4 blocks).
    partition : "ignore" | "recursive" | "correlated"
        pybdm's ``PartitionIgnore`` / ``PartitionRecursive`` / ``PartitionCorrelated``.
    shift : int >= 1, correlated only (default 1)
        Step of the sliding window.
    min_length : int >= 0, recursive only (default 2)
        Leftover parts are decomposed further while their shorter side is at least this.
    shape : tuple, optional
        Block shape (square), default (12,) or (4, 4); must be a shape of the table.
    warn_if_missing_ctm : bool
        Warn (:class:`qubd.bdm.CTMMissingWarning`) when a block is missing from the CTM table.
    missing_ctm : "max+1" | "mean" | "error"
        Value used for blocks missing from the table: pybdm's code uses the shape's largest CTM + 1
        (default); pybdm's docs say the mean; "error" raises ``ValueError``.

    Where pybdm returns or raises something else
    --------------------------------------------
    * Data that hold no block (e.g. shorter than a block with the ignore partition): pybdm computes
      0 and raises ``ValueError`` ("Computed BDM is 0", ``raise_if_zero``; its ``ent`` returns 0).
      qubd always raises ``ValueError`` from ``bdm``, ``ent`` and their normalised forms; there is
      no ``raise_if_zero`` switch and never a 0.0 for a failure.
    * Non-integer data: pybdm raises ``TypeError``, qubd ``ValueError``. Bool data are accepted as
      0/1 (pybdm rejects them). Wrong number of axes: pybdm ``AttributeError``, qubd ``ValueError``.
    * Normalised values with the correlated partition: pybdm ``NotImplementedError``, qubd
      ``ValueError``. With the recursive partition on 2D data that leave partial blocks pybdm raises
      ``KeyError`` (it normalises over non-square edge slices); qubd raises ``ValueError``.
    * Normalised values whose bounds coincide (max == min): pybdm divides by zero
      (``ZeroDivisionError`` or nan); qubd raises ``ValueError``.
    * Bad options (``shift < 1``, ``nsymbols`` without a table, non-square ``shape``): pybdm raises
      ``AttributeError`` / ``CTMDatasetNotFoundError`` / ``BDMConfigurationError``; qubd ``ValueError``.
    """

    def __init__(
        self,
        ndim: int,
        nsymbols: int = 2,
        partition: str = "ignore",
        *,
        shift: int | None = None,
        min_length: int | None = None,
        shape: tuple[int, ...] | None = None,
        warn_if_missing_ctm: bool = True,
        missing_ctm: str = "max+1",
    ) -> None:
        if (ndim, nsymbols) not in _TABLES:
            raise ValueError(
                f"no CTM table for ndim={ndim!r}, nsymbols={nsymbols!r}; available (ndim, nsymbols): "
                + ", ".join(str(k) for k in _TABLES)
            )
        if partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
        if shift is not None and partition != "correlated":
            raise ValueError(f"shift applies to the correlated partition only (partition={partition!r})")
        if min_length is not None and partition != "recursive":
            raise ValueError(f"min_length applies to the recursive partition only (partition={partition!r})")
        if missing_ctm not in MISSING_POLICIES:
            raise ValueError(f"missing_ctm must be one of {MISSING_POLICIES}, got {missing_ctm!r}")
        self.ndim = ndim
        self.nsymbols = nsymbols
        self.partition = partition
        self.shift = check_int_option(1 if shift is None else shift, "shift", 1)
        self.min_length = check_int_option(2 if min_length is None else min_length, "min_length", 0)
        self.ctmname = _TABLES[(ndim, nsymbols)]
        table = load_table(self.ctmname)
        if shape is None:
            shape = (12,) if ndim == 1 else (4, 4)
        shape = tuple(shape)
        if len(shape) != ndim or len(set(shape)) != 1 or not all(isinstance(s, int) for s in shape):
            raise ValueError(f"shape must be {ndim} equal integers (a square block), got {shape!r}")
        if shape not in table.codes:
            raise ValueError(
                f"CTM table {self.ctmname} has no blocks of shape {shape}; it has {sorted(table.codes)}"
            )
        self.shape = shape
        self._lookup = CTMLookup(table, missing_ctm, warn_if_missing_ctm)
        binary_4x4 = ndim == 2 and nsymbols == 2 and shape == (4, 4)
        self._fast = binary_4x4 and partition == "ignore"
        self._fast_recursive = binary_4x4 and partition == "recursive"
        self._native_kary = ndim == 1 and nsymbols > 2 and partition == "ignore"

    def __repr__(self) -> str:
        opts = {
            "ignore": "",
            "correlated": f", shift={self.shift}",
            "recursive": f", min_length={self.min_length}",
        }
        return (
            f"BDM(ndim={self.ndim}, nsymbols={self.nsymbols}, partition={self.partition!r}, "
            f"shape={self.shape}{opts[self.partition]})"
        )

    # -- stages -------------------------------------------------------------------------------

    def prepare(self, X: object) -> torch.Tensor:
        """Check data and return them as a uint8 tensor of symbols (on the data's device)."""
        return as_symbols(X, self.ndim, self.nsymbols)

    def decompose(self, X: object, with_index: bool = False) -> list[BlockGroup]:
        """Decomposition stage: the blocks of ``X``, grouped by shape."""
        return self._decompose(self.prepare(X), with_index)

    def _decompose(self, x: torch.Tensor, with_index: bool = False) -> list[BlockGroup]:
        return decompose(x, self.shape, self.partition, self.shift, self.min_length, with_index)

    def count(self, groups: list[BlockGroup]) -> BlockCounts:
        """Count stage: distinct raw blocks per shape and their numbers of occurrences."""
        counted = BlockCounts({}, {}, {})
        for group in groups:
            self._count_codes(counted, group.shape, encode_blocks(group.blocks, self.nsymbols), group.blocks)
        return counted

    def _count_codes(
        self, counted: BlockCounts, shape: tuple[int, ...], raw: torch.Tensor, blocks: torch.Tensor | None
    ) -> None:
        space = self.nsymbols ** math.prod(shape)
        if space <= _BINCOUNT_LIMIT:
            hist = torch.bincount(raw, minlength=space)
            counted.codes[shape] = hist.nonzero().flatten()
            counted.counts[shape] = hist[counted.codes[shape]]
            return
        ordered, order = torch.sort(raw)
        starts = torch.ones_like(ordered, dtype=torch.bool)
        starts[1:] = ordered[1:] != ordered[:-1]
        first = starts.nonzero().flatten()
        counted.codes[shape] = ordered[first]
        counted.counts[shape] = torch.diff(first, append=first.new_tensor([ordered.numel()]))
        if blocks is not None and not (self.nsymbols == 4 and shape == (12,)):  # that one has tables
            counted.digits[shape] = blocks[order[first]]

    def decompose_and_count(self, X: object) -> BlockCounts:
        """Decompose and count (the 2D binary 4x4 ignore case through the block-code histogram)."""
        return self._decompose_and_count(self.prepare(X))

    def _decompose_and_count(self, x: torch.Tensor) -> BlockCounts:
        if self._fast and min(x.shape) >= 4:
            hist = qops.plane_histograms(x, 1)
            codes = hist[0].nonzero().flatten()
            return BlockCounts({self.shape: codes}, {self.shape: hist[0][codes]}, histogram=hist)
        if self._fast_recursive and min(x.shape) >= 4:
            # The full 4x4 blocks through the histogram, the recursion on the edges generically.
            rows, cols = x.shape[0] // 4 * 4, x.shape[1] // 4 * 4
            hist = qops.plane_histograms(x[:rows, :cols], 1)[0]
            edges = decompose(x, self.shape, "recursive", min_length=self.min_length, leftovers_only=True)
            counted = self.count(edges)
            counted.codes[self.shape] = hist.nonzero().flatten()
            counted.counts[self.shape] = hist[counted.codes[self.shape]]
            return counted
        if self.partition == "correlated":  # window codes straight from the data, no [windows, L] copy
            counted = BlockCounts({}, {}, {})
            if min(x.shape) >= self.shape[0]:
                self._count_codes(
                    counted, self.shape, sliding_codes(x, self.shape[0], self.shift, self.nsymbols), None
                )
            return counted
        if self._native_kary and native.available(x):
            codes, counts = native.block_counts(x, self.shape[0], self.nsymbols)
            return BlockCounts({self.shape: codes}, {self.shape: counts})
        return self.count(self._decompose(x))

    def lookup(self, counts: BlockCounts) -> dict[tuple[int, ...], torch.Tensor]:
        """Lookup stage: float64 CTM value of every distinct block (missing ones imputed, warned)."""
        return {
            shape: self._lookup.values(shape, codes, counts.digits.get(shape))[0]
            for shape, codes in counts.codes.items()
        }

    def compute_bdm(self, counts: BlockCounts) -> float:
        """Aggregate stage: sum over distinct blocks of CTM + log2(count)."""
        if counts.histogram is not None:
            return float(ctm_score(counts.histogram)[0])
        ctms = self.lookup(counts)
        return float(
            sum((ctms[shape] + torch.log2(counts.counts[shape].to(torch.float64))).sum() for shape in ctms)
        )

    def compute_ent(self, counts: BlockCounts) -> float:
        """Aggregate stage for entropy: Shannon entropy (bits) of the distinct blocks' frequencies."""
        n = torch.cat([c.to(torch.float64) for c in counts.counts.values()])
        p = n / n.sum()
        return float(-(p * torch.log2(p)).sum())

    # -- public measures ----------------------------------------------------------------------

    def _counted(self, X: object, what: str) -> tuple[torch.Tensor, BlockCounts]:
        x = self.prepare(X)
        counts = self._decompose_and_count(x)
        if counts.total == 0:
            raise ValueError(
                f"X of shape {list(x.shape)} holds no block of shape {self.shape} under the {self.partition} "
                f"partition, so its {what} is undefined (pybdm raises 'Computed BDM is 0' here)"
            )
        return x, counts

    def _normalise(self, value: float, lo: float, hi: float, what: str) -> float:
        if hi == lo:
            raise ValueError(f"normalised {what} is undefined: its bounds coincide (min = max = {lo!r})")
        return (value - lo) / (hi - lo)

    def _refuse_correlated(self, what: str) -> None:
        if self.partition == "correlated":
            raise ValueError(
                f"normalised {what} is not defined for the correlated partition (pybdm: NotImplementedError)"
            )

    def bdm(self, X: object, normalized: bool = False) -> float:
        """BDM of ``X`` in bits (``normalized``: scaled to [0, 1] by pybdm's bounds)."""
        if normalized:
            self._refuse_correlated("BDM")
        x, counts = self._counted(X, "BDM")
        value = self.compute_bdm(counts)
        if normalized:
            shapes = slice_shapes(tuple(x.shape), self.shape, self.partition)
            lo, hi = normalize.min_bdm(self.ctmname, shapes), normalize.max_bdm(self.ctmname, shapes)
            value = self._normalise(value, lo, hi, "BDM")
        return value

    def nbdm(self, X: object) -> float:
        """Normalised BDM, in [0, 1] (pybdm's ``nbdm``)."""
        return self.bdm(X, normalized=True)

    def ent(self, X: object, normalized: bool = False) -> float:
        """Block entropy of ``X`` in bits (``normalized``: scaled by pybdm's bounds)."""
        if normalized:
            self._refuse_correlated("entropy")
        x, counts = self._counted(X, "block entropy")
        value = self.compute_ent(counts)
        if normalized:
            shapes = slice_shapes(tuple(x.shape), self.shape, self.partition)
            lo, hi = normalize.min_ent(shapes), normalize.max_ent(self.ctmname, shapes)
            value = self._normalise(value, lo, hi, "entropy")
        return value

    def nent(self, X: object) -> float:
        """Normalised block entropy (pybdm's ``nent``)."""
        return self.ent(X, normalized=True)
