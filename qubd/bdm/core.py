"""The ``BDM`` class: pybdm's ``BDM`` (same options, same numbers), vectorised with torch.

The pipeline has pybdm's four stages, each a method:

1. **decompose** (:meth:`BDM.decompose`): the partition object cuts the data into blocks
   (:mod:`qubd.bdm.partitions`);
2. **count** (:meth:`BDM.count`): each block as an integer (:mod:`qubd.bdm.blocks`), distinct raw
   blocks counted (:mod:`qubd.bdm.counts`);
3. **look up** (:meth:`BDM.lookup`): CTM value of each distinct block (:mod:`qubd.bdm.lookup`);
4. **aggregate** (:meth:`BDM.compute_bdm`, :meth:`BDM.compute_ent`): sum of CTM + log2(count),
   or the entropy of the counts.

pybdm looks up before counting; counting first looks up each distinct block once, which gives
the same sums. :meth:`BDM.decompose_and_count` lets the partition count by its fastest route
(:meth:`qubd.bdm.partitions.Partition.decompose_and_count`); when that route is the block-code
histogram of 2D binary 4x4 blocks, the aggregate is ``qubd.ctm.ctm_score`` of the histogram.
Data may be numpy arrays or torch tensors on any device; results are Python floats (float64).
"""

from __future__ import annotations

import torch

from qubd.bdm import normalize
from qubd.bdm.blocks import BlockGroup
from qubd.bdm.counts import BlockCounts, count_blocks
from qubd.bdm.inputs import as_symbols
from qubd.bdm.lookup import CTMLookup, table_name
from qubd.bdm.partitions import Partition, make_partition
from qubd.ctm.score import ctm_score


class BDM:
    """Block Decomposition Method, equal to ``pybdm.BDM`` with the matching partition class.

    Parameters
    ----------
    ndim : 1 or 2
        Number of axes of the data.
    nsymbols : 2, 4, 5, 6 or 9 (1D); 2 (2D)
        Alphabet size; data hold symbols ``0..nsymbols-1``. Picks pybdm's CTM table:
        ``ctm-b{nsymbols}-d12`` (1D, blocks of 12) or ``ctm-b2-d4x4`` (2D, 4x4 blocks).
    partition : "ignore" | "recursive" | "correlated", or one of the classes
        pybdm's ``PartitionIgnore`` / ``PartitionRecursive`` / ``PartitionCorrelated``
        (:mod:`qubd.bdm.partitions` has classes of the same names).
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

    Attributes: ``partition`` (the :class:`~qubd.bdm.partitions.Partition` object, which decomposes
    and counts) and ``ctm`` (the :class:`~qubd.bdm.lookup.CTMLookup` of table ``ctmname``), as pybdm.

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
        partition: str | type[Partition] = "ignore",
        *,
        shift: int | None = None,
        min_length: int | None = None,
        shape: tuple[int, ...] | None = None,
        warn_if_missing_ctm: bool = True,
        missing_ctm: str = "max+1",
    ) -> None:
        self.ctmname = table_name(ndim, nsymbols)
        if shape is None:
            shape = (12,) if ndim == 1 else (4, 4)
        shape = tuple(shape)
        self.partition = make_partition(partition, shape, shift=shift, min_length=min_length)
        self.ctm = CTMLookup.for_data(ndim, nsymbols, missing_ctm, warn_if_missing_ctm)
        if len(shape) != ndim or len(set(shape)) != 1 or not all(isinstance(s, int) for s in shape):
            raise ValueError(f"shape must be {ndim} equal integers (a square block), got {shape!r}")
        if not self.ctm.has_shape(shape):
            raise ValueError(
                f"CTM table {self.ctmname} has no blocks of shape {shape}; it has {self.ctm.shapes}"
            )
        self.ndim = ndim
        self.nsymbols = nsymbols
        self.shape = shape

    def __repr__(self) -> str:
        return (
            f"BDM(ndim={self.ndim}, nsymbols={self.nsymbols}, partition={self.partition.name!r}, "
            f"{', '.join(self.partition.params)})"
        )

    # -- stages -------------------------------------------------------------------------------

    def prepare(self, X: object) -> torch.Tensor:
        """Check data and return them as a uint8 tensor of symbols (on the data's device)."""
        return as_symbols(X, self.ndim, self.nsymbols)

    def decompose(self, X: object, with_index: bool = False) -> list[BlockGroup]:
        """Decomposition stage: the blocks of ``X``, grouped by shape (``with_index``: with the flat
        position of every cell)."""
        return self.partition.decompose(self.prepare(X), with_index)

    def count(self, groups: list[BlockGroup]) -> BlockCounts:
        """Count stage: distinct raw blocks per shape and their numbers of occurrences."""
        return count_blocks(groups, self.nsymbols)

    def decompose_and_count(self, X: object) -> BlockCounts:
        """Decompose and count, by the partition's fastest route."""
        return self.partition.decompose_and_count(self.prepare(X), self.nsymbols)

    def lookup(self, counts: BlockCounts) -> dict[tuple[int, ...], torch.Tensor]:
        """Lookup stage: float64 CTM value of every distinct block (missing ones imputed, warned)."""
        return {
            shape: self.ctm.values(shape, codes, counts.digits.get(shape))[0]
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

    def _counted(self, x: torch.Tensor, what: str) -> BlockCounts:
        counts = self.partition.decompose_and_count(x, self.nsymbols)
        if counts.total == 0:
            raise ValueError(
                f"X of shape {list(x.shape)} holds no block of shape {self.shape} under the "
                f"{self.partition.name} partition, so its {what} is undefined "
                "(pybdm raises 'Computed BDM is 0' here)"
            )
        return counts

    def _normalise(self, value: float, lo: float, hi: float, what: str) -> float:
        if hi == lo:
            raise ValueError(f"normalised {what} is undefined: its bounds coincide (min = max = {lo!r})")
        return (value - lo) / (hi - lo)

    def bdm(self, X: object, normalized: bool = False) -> float:
        """BDM of ``X`` in bits (``normalized``: scaled to [0, 1] by pybdm's bounds)."""
        x = self.prepare(X)
        shapes = self.partition.part_shapes(tuple(x.shape)) if normalized else None
        value = self.compute_bdm(self._counted(x, "BDM"))
        if shapes is not None:
            lo, hi = normalize.min_bdm(self.ctmname, shapes), normalize.max_bdm(self.ctmname, shapes)
            value = self._normalise(value, lo, hi, "BDM")
        return value

    def nbdm(self, X: object) -> float:
        """Normalised BDM, in [0, 1] (pybdm's ``nbdm``)."""
        return self.bdm(X, normalized=True)

    def ent(self, X: object, normalized: bool = False) -> float:
        """Block entropy of ``X`` in bits (``normalized``: scaled by pybdm's bounds)."""
        x = self.prepare(X)
        shapes = self.partition.part_shapes(tuple(x.shape)) if normalized else None
        value = self.compute_ent(self._counted(x, "block entropy"))
        if shapes is not None:
            lo, hi = normalize.min_ent(shapes), normalize.max_ent(self.ctmname, shapes)
            value = self._normalise(value, lo, hi, "entropy")
        return value

    def nent(self, X: object) -> float:
        """Normalised block entropy (pybdm's ``nent``)."""
        return self.ent(X, normalized=True)
