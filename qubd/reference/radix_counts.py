"""One step of a radix selection over values held by many processes (docs/distributed.md): the
counts of the next digit of each value's order-preserving key among the keys whose higher digits
equal a prefix. Summed over processes, the counts say which digit the key at a wanted rank has.

A value's key is its stored bits (16 for bf16/fp16, 32 for float32, 64 for float64) made to sort as
the values do: a negative value's bits all flipped, a positive value's sign bit set. -0.0 sorts just
below +0.0, NaNs beyond the infinities (as ``csrc/cpu/float_keys.h``).
"""

from __future__ import annotations

import torch

SIGNED_OF_BITS = {16: torch.int16, 32: torch.int32, 64: torch.int64}


def key_bits(dtype: torch.dtype) -> int:
    """How many bits a value of floating ``dtype`` is stored in, and its key has."""
    return torch.finfo(dtype).bits


def order_keys(w: torch.Tensor) -> torch.Tensor:
    """int64 keys of ``w``'s values (flattened); the key is the low ``key_bits(w.dtype)`` bits."""
    bits = key_bits(w.dtype)
    stored = w.contiguous().reshape(-1).view(SIGNED_OF_BITS[bits]).to(torch.int64)  # sign-extended
    return stored ^ ((stored >> 63) | -(1 << (bits - 1)))


def key_value(key: int, dtype: torch.dtype) -> torch.Tensor:
    """The value (a 0-d tensor of ``dtype``) whose order-preserving key is ``key``."""
    bits = key_bits(dtype)
    sign = 1 << (bits - 1)
    stored = key ^ sign if key & sign else ~key & ((1 << bits) - 1)
    signed = stored - (1 << bits) if stored & sign else stored
    return torch.tensor(signed, dtype=SIGNED_OF_BITS[bits]).view(dtype)


def radix_digit_counts(
    w: torch.Tensor, prefixes: list[int], fixed_bits: int, digit_bits: int
) -> torch.Tensor:
    """int64 ``[len(prefixes), 2**digit_bits]`` on ``w``'s device: row i counts, by value d, the
    keys of ``w`` whose top ``fixed_bits`` bits are ``prefixes[i]`` and next ``digit_bits`` bits d."""
    keys = order_keys(w)
    shift = key_bits(w.dtype) - fixed_bits - digit_bits
    digits = (keys >> shift) & ((1 << digit_bits) - 1)
    high = (keys >> (shift + digit_bits)) & ((1 << fixed_bits) - 1) if fixed_bits else torch.zeros_like(keys)
    bins = 1 << digit_bits
    rows = [torch.bincount(digits[high == p], minlength=bins) for p in prefixes]
    return torch.stack(rows) if rows else torch.zeros(0, bins, dtype=torch.int64, device=w.device)
