"""The range of a tensor sharded over ranks, equal to one process's: min/max by all-reduce, and
exact order statistics by a distributed radix select.

Radix select: each value becomes an integer key with the same order (float32 -> 32 bits, float64 ->
64 bits); the key of the wanted rank is found 8 bits at a time, from the top: every rank counts the
next digit of its candidate keys (those matching the digits found so far), the 256 counts are summed
over ranks, and the digit whose cumulative count passes the wanted rank is the key's next digit.
One all-reduce of ``len(ranks) x 256`` int64 per digit: 4 (float32) or 8 (float64) in all, whatever
the tensor's size; the values themselves never leave their rank.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from qubd.distributed.collectives import comm_device
from qubd.range import clip_range, compute_dtype

DIGIT_BITS = 8
DIGITS = 1 << DIGIT_BITS
KEY_BITS = {torch.float32: 32, torch.float64: 64}
INT_OF = {torch.float32: torch.int32, torch.float64: torch.int64}


def _magnitude_mask(key_bits: int) -> int:
    return (1 << (key_bits - 1)) - 1


def order_keys(values: torch.Tensor) -> torch.Tensor:
    """int64 keys of finite float32/float64 values, ordered as the values. -0.0 is keyed as +0.0 (the
    two are equal; either one gives the same quantisation)."""
    dtype = values.dtype
    raw = (values.reshape(-1) + 0.0).view(INT_OF[dtype]).to(torch.int64)  # sign-extended
    return torch.where(raw < 0, raw ^ _magnitude_mask(KEY_BITS[dtype]), raw)


def key_value(key: int, dtype: torch.dtype) -> torch.Tensor:
    """The value of ``order_keys`` key ``key``, a 0-d tensor of ``dtype``."""
    raw = key ^ _magnitude_mask(KEY_BITS[dtype]) if key < 0 else key
    return torch.tensor(raw, dtype=INT_OF[dtype]).view(dtype)


def _digit(keys: torch.Tensor, level: int, key_bits: int) -> torch.Tensor:
    shift = key_bits - DIGIT_BITS * (level + 1)
    if level == 0:  # the top digit is signed: shift it into 0..255
        return (keys >> shift) + DIGITS // 2
    return (keys >> shift) & (DIGITS - 1)


def order_statistics(
    local: torch.Tensor, ranks: list[int], group: dist.ProcessGroup | None = None
) -> torch.Tensor:
    """The values at 0-based ``ranks`` of all ranks' ``local`` values sorted together (every rank gets
    them; each rank passes the same ``ranks``), in the compute dtype, as one process's
    ``torch.ops.qubd.order_statistics`` of the whole tensor. The values must be finite."""
    dtype = compute_dtype(local.dtype)
    key_bits = KEY_BITS[dtype]
    keys = order_keys(local.to(dtype))
    candidates = [keys] * len(ranks)
    remaining = list(ranks)
    found = [0] * len(ranks)
    device = comm_device(group)
    for level in range(key_bits // DIGIT_BITS):
        counts = torch.stack(
            [torch.bincount(_digit(c, level, key_bits), minlength=DIGITS) for c in candidates]
        ).to(device)
        dist.all_reduce(counts, group=group)
        cumulative = counts.cumsum(dim=1).cpu()
        for i in range(len(ranks)):
            digit = int(torch.searchsorted(cumulative[i], remaining[i], right=True).item())
            if digit >= DIGITS:
                raise ValueError(f"rank {ranks[i]} is past the {int(cumulative[i, -1])} values")
            remaining[i] -= int(cumulative[i, digit - 1]) if digit else 0
            found[i] = found[i] * DIGITS + digit
            candidates[i] = candidates[i][_digit(candidates[i], level, key_bits) == digit]
    signed = [f - (1 << (key_bits - 1)) for f in found]  # undo the top digit's shift
    return torch.stack([key_value(k, dtype) for k in signed]) if ranks else torch.empty(0, dtype=dtype)


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
