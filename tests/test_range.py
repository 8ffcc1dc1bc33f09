"""The quantisation range: exact order statistics with torch.quantile's interpolation, any size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import qubd  # noqa: F401  (declares the ops)
from qubd.range import value_range


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5000),
    clip=st.floats(0.5, 100.0),
    seed=st.integers(0, 2**32 - 1),
    ties=st.booleans(),
)
def test_clipped_range_equals_torch_quantile(n, clip, seed, ties):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, generator=g)
    if ties:
        w = torch.round(w * 4) / 4
    q = (1 - clip / 100) / 2
    lo, hi = value_range(w, clip, torch.ops.qubd.order_statistics)
    assert lo.item() == torch.quantile(w, q).item()
    assert hi.item() == torch.quantile(w, 1 - q).item()
    assert lo.dtype == hi.dtype == torch.float32


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_range_equals_torch_quantile_on_every_backend(with_backend, backend):
    with_backend(backend)
    w = torch.randn(300, 301)
    for clip in (99.9, 99.0, 50.0, 100.0):
        q = (1 - clip / 100) / 2
        lo, hi = value_range(w, clip, torch.ops.qubd.order_statistics)
        assert (lo.item(), hi.item()) == (
            torch.quantile(w.flatten(), q).item(),
            torch.quantile(w.flatten(), 1 - q).item(),
        )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_range_is_computed_in_float32(cpu_backend, dtype):
    w = torch.randn(50, 70).to(dtype)
    lo, hi = value_range(w, 99.0, torch.ops.qubd.order_statistics)
    ref = w.float().flatten()
    assert lo.item() == torch.quantile(ref, 0.005).item()
    assert hi.item() == torch.quantile(ref, 0.995).item()


def test_range_past_torch_quantile_limit(cpu_backend):
    """Beyond 2**24 elements torch.quantile refuses; ours is exact with a float64 rank."""
    n = (1 << 24) + 1001
    w = torch.randn(n, generator=torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError):
        torch.quantile(w, 0.1)
    clip = 99.9
    q = (1 - clip / 100) / 2
    a = np.sort(w.numpy())
    expected = []
    for quantile in (q, 1 - q):
        rank = quantile * (n - 1)  # float64
        below, above = int(np.floor(rank)), int(np.ceil(rank))
        weight = torch.tensor([rank - below], dtype=torch.float32)
        expected.append(torch.lerp(torch.tensor([a[below]]), torch.tensor([a[above]]), weight).item())
    lo, hi = value_range(w, clip, torch.ops.qubd.order_statistics)
    assert [lo.item(), hi.item()] == expected


def test_min_max_range(cpu_backend):
    w = torch.randn(10, 10)
    lo, hi = value_range(w, None, torch.ops.qubd.order_statistics)
    assert (lo.item(), hi.item()) == (w.min().item(), w.max().item())
