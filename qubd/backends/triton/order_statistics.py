"""Exact order statistics by radix select over order-preserving integer keys of the float bits.

A float's bits map to an unsigned key with the same order (negative: flip all bits; positive: flip
the sign bit). Keys are 16 bits for bf16/fp16 (their own bits: no upcast needed to order them), 32
for fp32, 64 for fp64. Each pass histograms the next ``RADIX_BITS`` digit of the keys that match the
digits already chosen for a wanted rank (the rank's "prefix"), and the host picks the digit that
holds the rank. Distinct prefixes select disjoint keys, so one histogram of ``prefixes x 2**digit``
bins serves every wanted rank; each program builds it privately in registers (``tl.histogram``) and
adds it to the global one once. After the first pass, if the keys that still match are few, they are
compacted into a small buffer and the remaining passes read only that: fp32 reads the weights twice.
No copy of the tensor is made or sorted.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from qubd.backends.triton._launch import check_device, num_programs, on_input_device

RADIX_BITS = 12
PASS_BLOCK = 4096
# Compact the keys still in play when they are at most 1/COMPACT_FRACTION of the input.
COMPACT_FRACTION = 16

# Source kinds (constexpr SRC): float values of a dtype, or keys already made (compacted buffer).
F32, BF16, F16, F64, KEYS32, KEYS64 = range(6)
_KIND = {torch.float32: F32, torch.bfloat16: BF16, torch.float16: F16, torch.float64: F64}
_KEY_BITS = {F32: 32, BF16: 16, F16: 16, F64: 64}


@triton.jit
def _keys(x, SRC: tl.constexpr):
    """Order-preserving unsigned keys (uint32, or uint64 for fp64) of loaded values, and a mask of
    non-finite values."""
    if SRC == 0:  # fp32
        bits = x.to(tl.int32, bitcast=True)
        key = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).to(tl.uint32, bitcast=True) ^ 0x80000000
        bad = (bits & 0x7F800000) == 0x7F800000
    elif SRC == 1 or SRC == 2:  # bf16, fp16: sign-extended 16-bit pattern
        bits = x.to(tl.int16, bitcast=True).to(tl.int32)
        key = ((bits ^ ((bits >> 15) & 0x7FFF)) + 0x8000).to(tl.uint32, bitcast=True)
        if SRC == 1:
            bad = (bits & 0x7F80) == 0x7F80
        else:
            bad = (bits & 0x7C00) == 0x7C00
    elif SRC == 3:  # fp64
        bits = x.to(tl.int64, bitcast=True)
        key = (bits ^ ((bits >> 63) & 0x7FFFFFFFFFFFFFFF)).to(tl.uint64, bitcast=True) ^ 0x8000000000000000
        bad = (bits & 0x7FF0000000000000) == 0x7FF0000000000000
    elif SRC == 4:  # keys32 stored as int32
        key = x.to(tl.uint32, bitcast=True)
        bad = key != key
    else:  # keys64 stored as int64
        key = x.to(tl.uint64, bitcast=True)
        bad = key != key
    return key, bad


@triton.jit
def _prefix_slot(key, prefix_ptr, KEY_BITS: tl.constexpr, DONE_BITS: tl.constexpr, PREFIXES: tl.constexpr):
    """Index of the prefix (of DONE_BITS high bits) that ``key`` matches, or -1."""
    slot = tl.full(key.shape, -1, tl.int32)
    if DONE_BITS == 0:
        slot = tl.zeros(key.shape, tl.int32)
    else:
        high = key >> (KEY_BITS - DONE_BITS)
        for k in tl.static_range(PREFIXES):
            slot = tl.where(high == tl.load(prefix_ptr + k).to(high.dtype), k, slot)
    return slot


@triton.jit
def _radix_histogram_kernel(
    src_ptr,
    n,
    prefix_ptr,  # int64 [PREFIXES]: the distinct prefixes of the wanted ranks
    hist_ptr,  # int64 [SLOTS * 2**DIGIT_BITS], zeroed: row k counts the digits of keys matching prefix k
    bad_ptr,  # int64 [1]: count of NaN/Inf values
    n_tiles,
    SRC: tl.constexpr,
    KEY_BITS: tl.constexpr,
    DONE_BITS: tl.constexpr,
    DIGIT_BITS: tl.constexpr,
    PREFIXES: tl.constexpr,
    SLOTS: tl.constexpr,  # PREFIXES rounded up to a power of two
    BLOCK: tl.constexpr,
):
    BINS: tl.constexpr = SLOTS * (1 << DIGIT_BITS)
    counts = tl.zeros([BINS], dtype=tl.int32)
    bad = tl.zeros([BLOCK], dtype=tl.int32)
    for tile in range(tl.program_id(0), n_tiles, tl.num_programs(0)):
        offs = tl.cast(tile, tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        key, is_bad = _keys(tl.load(src_ptr + offs, mask=mask, other=0), SRC)
        bad += (mask & is_bad).to(tl.int32)
        slot = _prefix_slot(key, prefix_ptr, KEY_BITS, DONE_BITS, PREFIXES)
        digit = ((key >> (KEY_BITS - DONE_BITS - DIGIT_BITS)) & ((1 << DIGIT_BITS) - 1)).to(tl.int32)
        selected = mask & (slot >= 0)
        counts += tl.histogram(slot * (1 << DIGIT_BITS) + digit, BINS, mask=selected)
    tl.atomic_add(hist_ptr + tl.arange(0, BINS), counts.to(tl.int64), sem="relaxed")
    tl.atomic_add(bad_ptr, tl.sum(bad.to(tl.int64)), sem="relaxed")


@triton.jit
def _radix_compact_kernel(
    src_ptr,
    n,
    prefix_ptr,
    out_ptr,  # int32 (int64 for 64-bit keys) buffer of the matching keys
    count_ptr,  # int64 [1], zeroed: keys written so far
    n_tiles,
    SRC: tl.constexpr,
    KEY_BITS: tl.constexpr,
    DONE_BITS: tl.constexpr,
    PREFIXES: tl.constexpr,
    BLOCK: tl.constexpr,
):
    for tile in range(tl.program_id(0), n_tiles, tl.num_programs(0)):
        offs = tl.cast(tile, tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        key, _ = _keys(tl.load(src_ptr + offs, mask=mask, other=0), SRC)
        keep = mask & (_prefix_slot(key, prefix_ptr, KEY_BITS, DONE_BITS, PREFIXES) >= 0)
        keep32 = keep.to(tl.int32)
        # One atomic per tile reserves the tile's slice of the buffer; order in it does not matter.
        start = tl.atomic_add(count_ptr, tl.sum(keep32).to(tl.int64), sem="relaxed")
        pos = start + (tl.cumsum(keep32, axis=0) - 1).to(tl.int64)
        tl.store(out_ptr + pos, key.to(out_ptr.dtype.element_ty, bitcast=True), mask=keep)


def _decode(key: int, kind: int) -> float:
    """The float value of an order-preserving key."""
    if kind in (BF16, F16):
        signed = key - 0x8000
        bits = signed ^ ((signed >> 15) & 0x7FFF)
        dtype = torch.bfloat16 if kind == BF16 else torch.float16
        return torch.tensor([bits], dtype=torch.int16).view(dtype).item()
    width = _KEY_BITS[kind]
    signed = key ^ (1 << (width - 1))
    if signed >= 1 << (width - 1):
        signed -= 1 << width
    bits = signed ^ ((signed >> (width - 1)) & ((1 << (width - 1)) - 1))
    itype, ftype = (np.int32, np.float32) if width == 32 else (np.int64, np.float64)
    return float(np.array([bits], dtype=itype).view(ftype)[0])


def _launch_args(src: torch.Tensor) -> tuple[int, int]:
    n_tiles = triton.cdiv(src.numel(), PASS_BLOCK)
    return n_tiles, num_programs(src.device, n_tiles)


@on_input_device
def order_statistics(w: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    """Exact sorted values of ``w`` at 0-based ``ranks``: float32 (float64 for float64 ``w``).

    Raises ValueError on NaN/Inf or a rank outside [0, numel).
    """
    check_device(w)
    if w.dtype not in _KIND:
        raise ValueError(f"order_statistics takes float32, bfloat16, float16 or float64, got {w.dtype}")
    out_dtype = torch.float64 if w.dtype == torch.float64 else torch.float32
    flat = w.contiguous().reshape(-1)
    n = flat.numel()
    ranks = [int(r) for r in ranks]
    if any(not 0 <= r < n for r in ranks):
        raise ValueError(f"ranks must lie in [0, {n}), got {ranks}")
    if not ranks:
        return torch.empty(0, dtype=out_dtype, device=w.device)

    kind = _KIND[w.dtype]
    key_bits = _KEY_BITS[kind]
    src, src_kind = flat, kind
    prefixes = [0] * len(ranks)  # chosen high digits of each rank's key
    remaining = list(ranks)  # rank among the keys that match the prefix
    done = 0
    bad = torch.zeros(1, dtype=torch.int64, device=w.device)
    while done < key_bits:
        digit_bits = min(RADIX_BITS, key_bits - done)
        distinct = sorted(set(prefixes))
        slots = triton.next_power_of_2(len(distinct))
        hist = torch.zeros(slots << digit_bits, dtype=torch.int64, device=w.device)
        n_tiles, programs = _launch_args(src)
        _radix_histogram_kernel[(programs,)](
            src,
            src.numel(),
            torch.tensor(distinct, dtype=torch.int64, device=w.device),
            hist,
            bad,
            n_tiles,
            SRC=src_kind,
            KEY_BITS=key_bits,
            DONE_BITS=done,
            DIGIT_BITS=digit_bits,
            PREFIXES=len(distinct),
            SLOTS=slots,
            BLOCK=PASS_BLOCK,
            num_warps=8,
        )
        if done == 0 and bad.item() > 0:
            raise ValueError("weights contain NaN or Inf values")
        counts = hist.reshape(slots, 1 << digit_bits).cpu()
        cumulative = counts.cumsum(dim=1)
        for i, (prefix, rank) in enumerate(zip(prefixes, remaining, strict=True)):
            row = cumulative[distinct.index(prefix)]
            digit = int(torch.searchsorted(row, torch.tensor([rank]), right=True).item())
            remaining[i] = rank - (int(row[digit - 1]) if digit > 0 else 0)
            prefixes[i] = (prefix << digit_bits) | digit
        done += digit_bits

        if src_kind == kind and key_bits - done > RADIX_BITS:
            chosen = sorted(set(prefixes))
            # Keys still in play: the counts of the chosen bins, known from this pass.
            digit_mask = (1 << digit_bits) - 1
            left = sum(int(counts[distinct.index(p >> digit_bits), p & digit_mask]) for p in chosen)
            if left * COMPACT_FRACTION <= n:
                src, src_kind = _compact(src, src_kind, key_bits, done, chosen, left)

    values = [_decode(p, kind) for p in prefixes]
    return torch.tensor(values, dtype=out_dtype, device=w.device)


def _compact(src: torch.Tensor, src_kind: int, key_bits: int, done: int, distinct: list[int], left: int):
    """The keys of ``src`` that match one of the ``distinct`` prefixes, as a new key source."""
    out = torch.empty(left, dtype=torch.int64 if key_bits == 64 else torch.int32, device=src.device)
    count = torch.zeros(1, dtype=torch.int64, device=src.device)
    n_tiles, programs = _launch_args(src)
    _radix_compact_kernel[(programs,)](
        src,
        src.numel(),
        torch.tensor(distinct, dtype=torch.int64, device=src.device),
        out,
        count,
        n_tiles,
        SRC=src_kind,
        KEY_BITS=key_bits,
        DONE_BITS=done,
        PREFIXES=len(distinct),
        BLOCK=PASS_BLOCK,
        num_warps=8,
    )
    return out, KEYS64 if key_bits == 64 else KEYS32
