"""The range of a tensor sharded over ranks, equal to one process's: min/max by all-reduce, and
exact order statistics by a distributed radix select.

Radix select: each value becomes an integer key with the same order (float32 -> int32, float64 ->
int64); the key at a wanted rank is found a digit at a time, from the top: every rank counts the next
digit of its candidate keys (those whose digits so far match), the counts are summed over ranks, and
the digit whose cumulative count passes the wanted rank is the key's next digit. Wanted ranks whose
digits so far agree share their candidates and counts. The first digit is 12 bits for float32 (sign,
exponent and 3 mantissa bits, 16 for float64), so the candidates shrink to a sliver of the values
after one pass over them. One all-reduce of int64 counts per digit: 3 (float32) or 4 (float64) in
all, of at most ``len(ranks) x 2**digit_bits`` counts, whatever the tensor's size; the values
themselves never leave their rank.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from qubd.distributed.collectives import comm_device
from qubd.range import clip_range, compute_dtype

DIGIT_BITS = {torch.float32: (12, 10, 10), torch.float64: (16, 16, 16, 16)}
INT_OF = {torch.float32: torch.int32, torch.float64: torch.int64}


def _key_bits(dtype: torch.dtype) -> int:
    return sum(DIGIT_BITS[dtype])


def _magnitude_mask(dtype: torch.dtype) -> int:
    return (1 << (_key_bits(dtype) - 1)) - 1


def order_keys(values: torch.Tensor) -> torch.Tensor:
    """Integer keys (int32 for float32, int64 for float64) of finite values, ordered as the values.
    -0.0 is keyed as +0.0 (the two are equal; either one gives the same quantisation)."""
    raw = (values.reshape(-1) + 0.0).view(INT_OF[values.dtype])
    return torch.where(raw < 0, raw ^ _magnitude_mask(values.dtype), raw)


def key_value(key: int, dtype: torch.dtype) -> torch.Tensor:
    """The value of ``order_keys`` key ``key``, a 0-d tensor of ``dtype``."""
    raw = key ^ _magnitude_mask(dtype) if key < 0 else key
    return torch.tensor(raw, dtype=INT_OF[dtype]).view(dtype)


def _digits(keys: torch.Tensor, dtype: torch.dtype, level: int) -> torch.Tensor:
    widths = DIGIT_BITS[dtype]
    shift = sum(widths[level + 1 :])
    if level == 0:  # the top digit is signed: shift it into 0 .. 2**width - 1
        return (keys >> shift) + (1 << (widths[0] - 1))
    return (keys >> shift) & ((1 << widths[level]) - 1)


def order_statistics(
    local: torch.Tensor, ranks: list[int], group: dist.ProcessGroup | None = None
) -> torch.Tensor:
    """The values at 0-based ``ranks`` of all ranks' ``local`` values sorted together (every rank gets
    them; each rank passes the same ``ranks``), in the compute dtype, as one process's
    ``torch.ops.qubd.order_statistics`` of the whole tensor. The values must be finite."""
    dtype = compute_dtype(local.dtype)
    if not ranks:
        return torch.empty(0, dtype=dtype)
    device = comm_device(group)
    candidates = {0: order_keys(local.to(dtype))}  # by the digits found so far
    found = [0] * len(ranks)
    remaining = list(ranks)
    for level, width in enumerate(DIGIT_BITS[dtype]):
        prefixes = sorted(set(found))
        digits = {p: _digits(candidates[p], dtype, level) for p in prefixes}
        counts = torch.stack([torch.bincount(digits[p], minlength=1 << width) for p in prefixes])
        counts = counts.to(device)
        dist.all_reduce(counts, group=group)
        cumulative = counts.cumsum(dim=1).cpu()
        narrowed = {}
        for i, prefix in enumerate(found):
            row = cumulative[prefixes.index(prefix)]
            digit = int(torch.searchsorted(row, remaining[i], right=True).item())
            if digit >= 1 << width:
                raise ValueError(f"rank {ranks[i]} is past the {int(row[-1])} values")
            remaining[i] -= int(row[digit - 1]) if digit else 0
            found[i] = (prefix << width) | digit
            if found[i] not in narrowed:
                narrowed[found[i]] = candidates[prefix][digits[prefix] == digit]
        candidates = narrowed
    offset = 1 << (_key_bits(dtype) - 1)  # undo the top digit's shift
    return torch.stack([key_value(f - offset, dtype) for f in found])


def global_range(
    local: torch.Tensor, numel: int, clip: float | None, group: dist.ProcessGroup | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``qubd.range.value_range`` of the tensor of ``numel`` values whose shards the ranks hold
    (``local`` may be empty), on every rank. The values must be finite (checked before)."""
    dtype = compute_dtype(local.dtype)
    if clip is not None:
        return clip_range(numel, clip, dtype, lambda ranks: order_statistics(local, ranks, group))
    if local.numel():
        lo, hi = (x.to(torch.float64) for x in torch.aminmax(local))
    else:
        lo, hi = torch.tensor(torch.inf, dtype=torch.float64), torch.tensor(-torch.inf, dtype=torch.float64)
    bounds = torch.stack([-lo, hi]).to(comm_device(group))
    dist.all_reduce(bounds, op=dist.ReduceOp.MAX, group=group)
    bounds = bounds.cpu()
    return (-bounds[0]).to(dtype), bounds[1].to(dtype)
