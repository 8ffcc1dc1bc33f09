"""``radix_digit_counts``, the counting step of the sharded order statistics: every backend gives the
same counts, and they equal an independent count (numpy, over keys made from the IEEE bits by the
textbook rule, in unsigned arithmetic); a selection built on the counts alone equals a sort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qubd.reference.radix_counts import key_bits, key_value

DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
UNSIGNED = {16: np.uint16, 32: np.uint32, 64: np.uint64}


def _values(dtype: torch.dtype, n: int = 20_000) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    info = torch.finfo(dtype)
    special = torch.tensor(
        [0.0, -0.0, 0.0, info.max, -info.max, info.smallest_normal / 8, -info.tiny, 1.0, 1.0],
        dtype=torch.float64,
    )
    values = torch.cat([torch.randn(n, generator=g, dtype=torch.float64) * 3, special])
    return values[torch.randperm(values.numel(), generator=g)].to(dtype)


def _numpy_keys(w: torch.Tensor) -> np.ndarray:
    """Unsigned keys: a negative float's bits inverted, a positive one's with the sign bit set."""
    bits = key_bits(w.dtype)
    unsigned = UNSIGNED[bits]
    raw = w.view({16: torch.int16, 32: torch.int32, 64: torch.int64}[bits]).numpy().view(unsigned)
    sign = unsigned(1) << unsigned(bits - 1)
    return np.where(raw & sign, ~raw, raw | sign).astype(unsigned)


def _numpy_counts(w: torch.Tensor, prefixes: list[int], fixed: int, digit: int) -> np.ndarray:
    keys = _numpy_keys(w).astype(np.uint64)
    bits = key_bits(w.dtype)
    digits = (keys >> np.uint64(bits - fixed - digit)) & np.uint64((1 << digit) - 1)
    high = keys >> np.uint64(bits - fixed) if fixed else np.zeros_like(keys)
    rows = [
        np.bincount(digits[high == np.uint64(p)].astype(np.int64), minlength=1 << digit) for p in prefixes
    ]
    return np.stack(rows)


def _prefixes(w: torch.Tensor, fixed: int) -> list[list[int]]:
    """Lists of prefixes: some keys' (smallest, a middle one, largest, again the first) with one no
    key has; two of them; and seven that keys have (more than the kernel flags at once)."""
    present = sorted({int(k) >> (key_bits(w.dtype) - fixed) for k in _numpy_keys(w)})
    absent = next(p for p in range(1 << fixed) if p not in present)
    few = [present[0], present[len(present) // 2], present[-1], present[0], absent]
    return [few, few[:2], present[:: max(1, len(present) // 7)][:7] + [absent]]


@pytest.mark.parametrize("dtype", DTYPES)
def test_counts_equal_an_independent_count(cpu_backend, dtype):
    w = _values(dtype)[:3000]
    bits = key_bits(dtype)
    steps = [(0, 16)] + ([(16, 16), (16, 3), (bits - 1, 1)] if bits > 16 else [(8, 8), (15, 1)])
    for fixed, digit in steps:
        for wanted in [[0]] if fixed == 0 else _prefixes(w, fixed):
            got = torch.ops.qubd.radix_digit_counts(w, wanted, fixed, digit)
            assert got.dtype == torch.int64 and got.shape == (len(wanted), 1 << digit)
            assert np.array_equal(got.numpy(), _numpy_counts(w, wanted, fixed, digit)), (fixed, digit, wanted)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backends_agree_on_large_strided_input(with_backend, dtype):
    w = _values(dtype, 300_000).reshape(-1, 3)[:, 1]  # not contiguous
    results = []
    for backend in ("native", "torch"):
        with_backend(backend)
        counts = [torch.ops.qubd.radix_digit_counts(w, [0], 0, 16)]
        if key_bits(dtype) > 16:
            prefixes = torch.nonzero(counts[0][0]).flatten().tolist()[::7][:4]
            counts.append(torch.ops.qubd.radix_digit_counts(w, prefixes, 16, 16))
        results.append(counts)
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


@pytest.mark.parametrize("dtype", DTYPES)
def test_selection_from_the_counts_equals_a_sort(cpu_backend, dtype):
    """A single-process radix select over the counts finds each rank's key; its value is the sorted value."""
    w = _values(dtype)
    ordered = torch.sort(w.to(torch.float64)).values
    for rank in (0, 1, 777, w.numel() // 2, w.numel() - 2, w.numel() - 1):
        prefix, remaining = 0, rank
        for fixed in range(0, key_bits(dtype), 16):
            row = torch.ops.qubd.radix_digit_counts(w, [prefix], fixed, 16)[0].cumsum(0)
            digit = int(torch.searchsorted(row, remaining, right=True))
            remaining -= int(row[digit - 1]) if digit else 0
            prefix = prefix << 16 | digit
        assert key_value(prefix, dtype).item() == ordered[rank].item(), rank


def test_empty_tensor_and_no_prefixes(cpu_backend):
    empty = torch.empty(0, dtype=torch.bfloat16)
    assert torch.equal(
        torch.ops.qubd.radix_digit_counts(empty, [0], 0, 16), torch.zeros(1, 1 << 16, dtype=torch.int64)
    )
    assert torch.ops.qubd.radix_digit_counts(torch.randn(10), [], 8, 4).shape == (0, 16)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((torch.randn(10), [0], 0, 17), "1..16"),
        ((torch.randn(10), [0], 20, 16), "32-bit keys"),
        ((torch.randn(10).half(), [0], 8, 9), "16-bit keys"),
        ((torch.randn(10), [256], 8, 8), r"prefixes must lie in \[0, 2\*\*8\)"),
        ((torch.randn(10), [-1], 8, 8), "prefixes"),
        ((torch.arange(10), [0], 0, 8), "float32, float16, bfloat16 or float64"),
    ],
)
def test_bad_arguments_are_refused(cpu_backend, args, match):
    with pytest.raises(ValueError, match=match):
        torch.ops.qubd.radix_digit_counts(*args)


def test_triton_backend_counts_as_the_reference(with_backend):
    from qubd.ops import dispatch

    if dispatch.unavailable("triton", "cpu"):
        pytest.skip("Triton cannot run on CPU tensors here")
    w = _values(torch.bfloat16)
    with_backend("triton")
    got = torch.ops.qubd.radix_digit_counts(w, [0], 0, 16)
    assert np.array_equal(got.numpy(), _numpy_counts(w, [0], 0, 16))
