"""Native (C++) fast path of the count and lookup stages for 1D blocks of CPU tensors.

``qubd._C`` counts the raw blocks of a symbol sequence (block codes, radix sort, run lengths),
normalises block codes (decode, relabel in order of first appearance, encode) and looks normalised
codes up in a hash table of the CTM table (about one cache miss a block, where a search in the
sorted table of millions of keys costs several). Used when the native backend runs the ops on CPU
tensors (``qubd.ops.dispatch.routed``); the torch code in
:mod:`qubd.bdm.counts`, :mod:`qubd.bdm.blocks` and :mod:`qubd.bdm.lookup` is the reference and runs on
every other device (tests compare both).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from qubd.ctm.tables import load_table
from qubd.ops import dispatch


def available(t: torch.Tensor) -> bool:
    """Whether the native kernels take ``t`` (a CPU tensor) now."""
    return t.device.type == "cpu" and dispatch.routed("cpu") == "native"


def block_counts(x: torch.Tensor, length: int, nsymbols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 distinct codes (ascending) of the non-overlapping ``length``-blocks of uint8 ``x`` [n], and
    their counts (the last ``n % length`` symbols are dropped)."""
    from qubd import _C

    x = x.contiguous()
    codes = torch.empty(x.numel() // length, dtype=torch.int64)
    counts = torch.empty_like(codes)
    distinct = _C.kary_block_counts(
        x.data_ptr(), x.numel(), length, nsymbols, codes.data_ptr(), counts.data_ptr()
    )
    return codes[:distinct], counts[:distinct]


def normalise_codes(codes: torch.Tensor, length: int, nsymbols: int) -> torch.Tensor:
    """int64 ``codes`` with symbols relabelled in order of first appearance (``blocks.normalize_codes``)."""
    from qubd import _C

    codes = codes.to(torch.int64).contiguous()
    out = torch.empty_like(codes)
    _C.normalise_kary_codes(codes.data_ptr(), codes.numel(), length, nsymbols, out.data_ptr())
    return out


@dataclass(frozen=True)
class CTMHash:
    """A CTM table (one block shape) as an open-addressing hash table of ``qubd._C``: ``slots``
    (uint64 [2**log2_slots], key and value id per slot) and ``palette`` (the distinct CTM values)."""

    slots: torch.Tensor
    log2_slots: int
    palette: torch.Tensor


@functools.cache
def ctm_hash(table_name: str, shape: tuple[int, ...]) -> CTMHash | None:
    """The hash table of ``table_name``'s blocks of ``shape``, or None if its keys or distinct values do
    not fit a slot. Built once, in ~0.2 s; 8 bytes a slot, at least 2.5 slots a key (at most 64 MiB:
    ``ctm-b9-d12``'s 3.2M blocks of 12), which keeps probe runs short."""
    from qubd import _C

    table = load_table(table_name)
    keys, values = table.codes[shape], table.values[shape]
    palette, ids = np.unique(values, return_inverse=True)
    if len(palette) > 1 << 16 or int(keys.max()) >= 1 << 47:
        return None
    log2_slots = max(4, math.ceil(math.log2(2.5 * len(keys))))
    keys = torch.from_numpy(np.ascontiguousarray(keys, dtype=np.int64))
    ids = torch.from_numpy(ids.astype(np.uint16).reshape(-1))
    slots = torch.empty(1 << log2_slots, dtype=torch.uint64)
    _C.build_ctm_hash(keys.data_ptr(), ids.data_ptr(), keys.numel(), log2_slots, slots.data_ptr())
    return CTMHash(slots, log2_slots, torch.from_numpy(palette.astype(np.float64)))


def ctm_values(table: CTMHash, queries: torch.Tensor) -> torch.Tensor:
    """float64 CTM values of normalised codes ``queries`` (>= 0), NaN for those absent from the table."""
    from qubd import _C

    queries = queries.to(torch.int64).contiguous()
    out = torch.empty(queries.shape, dtype=torch.float64)
    slots, palette = table.slots.data_ptr(), table.palette.data_ptr()
    _C.ctm_hash_lookup(slots, table.log2_slots, palette, queries.data_ptr(), queries.numel(), out.data_ptr())
    return out
