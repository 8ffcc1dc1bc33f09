"""Lookup stage: CTM values of raw block codes, on any device.

:func:`table_name` is the table for an alphabet: pybdm's ``ctm-b{k}-d12`` for 1D data over ``k``
symbols (blocks of up to 12), ``ctm-b2-d4x4`` for 2D binary data (square blocks up to 4x4).

A raw code is normalised (:func:`qubd.bdm.blocks.normalize_codes`) and searched in the table's
sorted normalised keys. For shapes with at most 2**16 raw codes (every binary block up to 4x4, short
k-ary blocks) a dense table ``raw code -> CTM`` is built once per device and the lookup is a gather;
up to 2**22 normalised codes (4-symbol blocks of 12: 32 MiB), a dense ``normalised code -> CTM``.
On CPU tensors, k-ary codes are normalised and looked up (in a hash table of the CTM table) by the
native kernels (:mod:`qubd.bdm.native`).

Blocks missing from a table (only the larger k-ary ones: e.g. ``ctm-b4-d12`` lacks about 13% of the
length-12 keys) get a stand-in value, per ``missing``:

* ``"max+1"`` (default): pybdm's code, the shape's largest CTM value + 1 (pybdm's docs say "mean",
  its code does this);
* ``"mean"``: the mean CTM value of the shape (what pybdm's docs say);
* ``"error"``: raise ``ValueError``.

With ``warn=True`` a :class:`CTMMissingWarning` is emitted, as pybdm's ``BDMRuntimeWarning``
(once per call and shape, naming the number of distinct missing blocks and an example).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from qubd.bdm import native
from qubd.bdm.blocks import key_string, normalises_by_table, normalize_codes, normalize_digits
from qubd.ctm.tables import CTMTable, load_table

MISSING_POLICIES = ("max+1", "mean", "error")
# (ndim, nsymbols) -> pybdm's CTM table
TABLES = {
    (1, 2): "ctm-b2-d12",
    (1, 4): "ctm-b4-d12",
    (1, 5): "ctm-b5-d12",
    (1, 6): "ctm-b6-d12",
    (1, 9): "ctm-b9-d12",
    (2, 2): "ctm-b2-d4x4",
}
_DENSE_LIMIT = 1 << 16
# Normalised-code tables up to this size (32 MiB of float64: ctm-b4-d12's length-12 blocks).
_DENSE_NORMALISED_LIMIT = 1 << 22


class CTMMissingWarning(RuntimeWarning):
    """A block is absent from the CTM table; its CTM value was imputed (pybdm's BDMRuntimeWarning)."""


def table_name(ndim: int, nsymbols: int) -> str:
    """The CTM table of data with ``ndim`` axes over ``nsymbols`` symbols (ValueError if none)."""
    if (ndim, nsymbols) not in TABLES:
        raise ValueError(
            f"no CTM table for ndim={ndim!r}, nsymbols={nsymbols!r}; available (ndim, nsymbols): "
            + ", ".join(str(k) for k in TABLES)
        )
    return TABLES[(ndim, nsymbols)]


class CTMLookup:
    """CTM values of raw block codes for one table, with pybdm's handling of missing blocks.

    ``CTMLookup.for_data(ndim, nsymbols)`` picks the table (:func:`table_name`); ``values`` looks
    codes up; ``stand_in`` is the value given to blocks missing from the table.
    """

    def __init__(self, table: CTMTable, missing: str = "max+1", warn: bool = True) -> None:
        if missing not in MISSING_POLICIES:
            raise ValueError(f"missing_ctm must be one of {MISSING_POLICIES}, got {missing!r}")
        self.table = table
        self.nsymbols = table.nsymbols
        self.missing = missing
        self.warn = warn
        self._cache: dict[tuple, object] = {}

    @classmethod
    def for_data(cls, ndim: int, nsymbols: int, missing: str = "max+1", warn: bool = True) -> CTMLookup:
        """The lookup in the CTM table of data with ``ndim`` axes over ``nsymbols`` symbols."""
        return cls(load_table(table_name(ndim, nsymbols)), missing, warn)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """The block shapes the table has values for."""
        return sorted(self.table.codes)

    def has_shape(self, shape: tuple[int, ...]) -> bool:
        return tuple(shape) in self.table.codes

    def stand_in(self, shape: tuple[int, ...]) -> float:
        """The CTM value used for a block of ``shape`` missing from the table."""
        key = ("stand_in", shape)
        if key not in self._cache:
            if self.missing == "mean":
                self._cache[key] = float(np.mean(self.table.values[shape]))
            else:
                self._cache[key] = self.table.missing_value(shape)
        return self._cache[key]

    def _sorted(self, shape: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = ("sorted", shape, str(device))
        if key not in self._cache:
            self._cache[key] = (
                torch.from_numpy(self.table.codes[shape]).to(device),
                torch.from_numpy(self.table.values[shape]).to(device),
            )
        return self._cache[key]

    def _search(
        self, shape: tuple[int, ...], raw: torch.Tensor, digits: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        length = math.prod(shape)
        hashed = None
        if self.nsymbols > 2 and native.available(raw):
            hashed = native.ctm_hash(self.table.name, shape)
        if hashed is not None:
            values = native.ctm_values(hashed, native.normalise_codes(raw, length, self.nsymbols))
            return values, ~torch.isnan(values)
        if digits is not None and not normalises_by_table(length, self.nsymbols):
            normalised = normalize_digits(digits, self.nsymbols)
        else:
            normalised = normalize_codes(raw, length, self.nsymbols)
        if self.nsymbols ** (length - 1) <= _DENSE_NORMALISED_LIMIT:
            # Normalised codes start with symbol 0, so they are below k**(L-1): one gather.
            dense = self._dense_normalised(shape, raw.device)
            values = dense[normalised]
            return values, ~torch.isnan(values)
        codes, values = self._sorted(shape, raw.device)
        # Searching (and gathering) in sorted order walks the table in order: several times faster.
        ordered, order = torch.sort(normalised)
        pos = torch.searchsorted(codes, ordered).clamp_(max=codes.numel() - 1)
        found = torch.empty_like(ordered, dtype=torch.bool)
        found[order] = codes[pos] == ordered
        out = torch.empty(ordered.shape, dtype=values.dtype, device=values.device)
        out[order] = values[pos]
        return out, found

    def _dense_normalised(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        key = ("dense_normalised", shape, str(device))
        if key not in self._cache:
            codes, values = self._sorted(shape, torch.device("cpu"))
            dense = torch.full((self.nsymbols ** (math.prod(shape) - 1),), float("nan"), dtype=torch.float64)
            dense[codes] = values
            self._cache[key] = dense.to(device)
        return self._cache[key]

    def _dense(self, shape: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, ...] | None:
        if self.nsymbols ** math.prod(shape) > _DENSE_LIMIT:
            return None
        key = ("dense", shape, str(device))
        if key not in self._cache:
            raw = torch.arange(self.nsymbols ** math.prod(shape), dtype=torch.int64)
            self._cache[key] = tuple(t.to(device) for t in self._search(shape, raw))
        return self._cache[key]

    def values(
        self, shape: tuple[int, ...], raw: torch.Tensor, digits: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """float64 CTM values of raw codes of blocks of ``shape``, and the mask of those in the table.

        ``digits`` (optional, [len(raw), L]): the blocks' symbols, which spares decoding the codes.
        Missing blocks get the stand-in (or raise, per ``missing``) and warn if ``warn``.
        """
        shape = tuple(shape)
        if not self.has_shape(shape):
            raise ValueError(f"CTM table {self.table.name} has no blocks of shape {shape}")
        dense = self._dense(shape, raw.device)
        if dense is not None:
            values, found = dense[0][raw], dense[1][raw]
        else:
            values, found = self._search(shape, raw, digits)
        if (self.warn or self.missing == "error") and not bool(found.all()):
            absent = raw[~found]
            example = key_string(int(absent[0]), math.prod(shape), self.nsymbols)
            what = (
                f"CTM table {self.table.name} does not contain {int(absent.unique().numel())} distinct "
                f"block(s) of shape {shape} (e.g. {example!r})"
            )
            if self.missing == "error":
                raise ValueError(what + "; pass missing_ctm='max+1' or 'mean' to impute them")
            warnings.warn(
                f"{what}; using {self.missing} = {self.stand_in(shape)!r}", CTMMissingWarning, stacklevel=3
            )
        return torch.where(found, values, self.stand_in(shape)), found
