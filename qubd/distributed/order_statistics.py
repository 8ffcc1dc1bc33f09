"""The range of a tensor sharded over ranks, equal to one process's: min/max by all-reduce, and
exact order statistics by a distributed radix select.

Radix select: each value's stored bits become an integer key with the same order (16 bits for
bf16/fp16, 32 for float32, 64 for float64; ``qubd.reference.radix_counts``, the keys one process's
native selection uses), and the key at a wanted rank is found a 16-bit digit at a time, from the
top: every rank counts the next digit of its keys whose higher digits match (``radix_digit_counts``,
native on CPU: one pass over the shard per digit, the first a histogram of every key, the later
ones counting only the few keys a vectorised test flags), the counts are summed over ranks, and the
digit whose cumulative count passes the wanted rank is the key's next digit. Wanted ranks whose
digits so far agree share their counts. One all-reduce per digit, 1 (bf16/fp16), 2 (float32) or 4
(float64) in all, of ``distinct prefixes x 2**16`` counts (int32 when the tensor's size fits)
whatever the tensor's size; the values never leave their rank. The first digit also reveals NaN/Inf
(their keys' top 16 bits are no finite value's). The torch-op version this replaced (12/10/10-bit
digits, candidates copied out) made about ten passes over each shard: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from qubd.distributed.collectives import comm_device
from qubd.range import clip_range, compute_dtype
from qubd.reference.radix_counts import key_bits, key_value, order_keys

# The digits of a key, by its width, from the top. The first holds the sign and exponent, so it
# separates NaN/Inf from every finite value.
DIGIT_BITS = {16: (16,), 32: (16, 16), 64: (16, 16, 16, 16)}
INT32_MAX = 2**31 - 1


def _finite_buckets(dtype: torch.dtype) -> tuple[int, int]:
    """The first digits of the keys of the finite values of ``dtype``: a range [a, b]."""
    bits = key_bits(dtype)
    width = DIGIT_BITS[bits][0]
    extremes = torch.tensor([torch.finfo(dtype).min, torch.finfo(dtype).max], dtype=dtype)
    first = (order_keys(extremes) >> (bits - width)) & ((1 << width) - 1)
    return int(first[0]), int(first[1])


def order_statistics(
    local: torch.Tensor, ranks: list[int], group: dist.ProcessGroup | None = None, numel: int | None = None
) -> torch.Tensor:
    """The values at 0-based ``ranks`` of all ranks' ``local`` values sorted together (every rank gets
    them; each rank passes the same ``ranks`` and a tensor of the same dtype), in the compute dtype,
    as one process's ``torch.ops.qubd.order_statistics`` of the whole tensor, -0.0 and +0.0 apart as
    it keeps them. ValueError on every rank if some rank's values hold NaN or Inf. ``numel``, the
    number of values over all ranks where the caller knows it: counts then travel as int32 when it
    fits (half the bytes)."""
    dtype = compute_dtype(local.dtype)
    if not ranks:
        return torch.empty(0, dtype=dtype)
    device = comm_device(group)
    sent = torch.int32 if numel is not None and numel <= INT32_MAX else torch.int64
    found = [0] * len(ranks)  # each wanted rank's key digits so far
    remaining = list(ranks)  # its rank among the keys that share them
    fixed = 0
    for width in DIGIT_BITS[key_bits(local.dtype)]:
        prefixes = sorted(set(found))
        counts = torch.ops.qubd.radix_digit_counts(local, prefixes, fixed, width).to(device, sent)
        dist.all_reduce(counts, group=group)
        counts = counts.to("cpu", torch.int64)
        if fixed == 0:
            _check_finite(counts[0], local.dtype)
        cumulative = counts.cumsum(dim=1)
        for i, prefix in enumerate(found):
            row = cumulative[prefixes.index(prefix)]
            digit = int(torch.searchsorted(row, remaining[i], right=True).item())
            if digit >= 1 << width:
                raise ValueError(f"rank {ranks[i]} is past the {int(row[-1])} values")
            remaining[i] -= int(row[digit - 1]) if digit else 0
            found[i] = (prefix << width) | digit
        fixed += width
    return torch.stack([key_value(key, local.dtype) for key in found]).to(dtype)


def _check_finite(first_digits: torch.Tensor, dtype: torch.dtype) -> None:
    a, b = _finite_buckets(dtype)
    if first_digits[:a].any() or first_digits[b + 1 :].any():
        raise ValueError("weights contain NaN or Inf values")


def global_range(
    local: torch.Tensor, numel: int, clip: float | None, group: dist.ProcessGroup | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``qubd.range.value_range`` of the tensor of ``numel`` values whose shards the ranks hold
    (``local`` may be empty), on every rank. The values must be finite (checked before)."""
    dtype = compute_dtype(local.dtype)
    if clip is not None:
        return clip_range(numel, clip, dtype, lambda ranks: order_statistics(local, ranks, group, numel))
    if local.numel():
        lo, hi = (x.to(torch.float64) for x in torch.aminmax(local))
    else:
        lo, hi = torch.tensor(torch.inf, dtype=torch.float64), torch.tensor(-torch.inf, dtype=torch.float64)
    bounds = torch.stack([-lo, hi]).to(comm_device(group))
    dist.all_reduce(bounds, op=dist.ReduceOp.MAX, group=group)
    bounds = bounds.cpu()
    return (-bounds[0]).to(dtype), bounds[1].to(dtype)
