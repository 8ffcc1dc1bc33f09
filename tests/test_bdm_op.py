"""ops.bdm and ops.plane_histograms against pybdm, on every CPU backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import qubd
from tests.oracles import pybdm_bdm

SHAPES = [(4, 4), (5, 7), (8, 8), (12, 4), (4, 40), (37, 53), (64, 65), (3 * 4 + 1, 130), (256, 255)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", [0.1, 0.5, 0.9])
def test_bdm_equals_pybdm(cpu_backend, shape, density):
    rng = np.random.default_rng(hash((shape, density)) % 2**32)
    x = (rng.random(shape) < density).astype(np.int64)
    expected = pybdm_bdm(x)
    got = qubd.ops.bdm(torch.from_numpy(x))
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int32, torch.int64, torch.float32])
def test_bdm_accepts_binary_dtypes(cpu_backend, dtype):
    x = torch.from_numpy(np.random.default_rng(1).random((20, 24)) < 0.5)
    assert qubd.ops.bdm(x.to(dtype)).item() == pytest.approx(pybdm_bdm(x.numpy()), rel=1e-12)


def test_constant_planes(cpu_backend):
    for value in (0, 1):
        x = np.full((16, 16), value)
        assert qubd.ops.bdm(torch.from_numpy(x)).item() == pytest.approx(pybdm_bdm(x), rel=1e-12)


binary_arrays = st.tuples(st.integers(4, 40), st.integers(4, 40), st.integers(0, 2**32 - 1)).map(
    lambda t: (np.random.default_rng(t[2]).random((t[0], t[1])) < 0.5).astype(np.uint8)
)


@settings(max_examples=40, deadline=None)
@given(binary_arrays)
def test_histogram_counts_every_full_block_once(x):
    hist = qubd.ops.plane_histograms(torch.from_numpy(x), 1)
    assert hist.shape == (1, 1 << 16)
    assert hist.sum().item() == (x.shape[0] // 4) * (x.shape[1] // 4)


@settings(max_examples=40, deadline=None)
@given(binary_arrays, st.randoms(use_true_random=False))
def test_permuting_whole_blocks_keeps_bdm(x, random):
    rows, cols = x.shape[0] // 4, x.shape[1] // 4
    blocks = x[: rows * 4, : cols * 4].reshape(rows, 4, cols, 4).transpose(0, 2, 1, 3).reshape(-1, 4, 4)
    order = list(range(len(blocks)))
    random.shuffle(order)
    shuffled = blocks[order].reshape(rows, cols, 4, 4).transpose(0, 2, 1, 3).reshape(rows * 4, cols * 4)
    a = qubd.ops.bdm(torch.from_numpy(x)).item()
    b = qubd.ops.bdm(torch.from_numpy(np.ascontiguousarray(shuffled))).item()
    assert a == pytest.approx(b, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(binary_arrays)
def test_complement_keeps_bdm(x):
    # CTM is complement-symmetric and counts map one-to-one onto the complemented blocks.
    a = qubd.ops.bdm(torch.from_numpy(x)).item()
    b = qubd.ops.bdm(torch.from_numpy(1 - x)).item()
    assert a == pytest.approx(b, rel=1e-12)


def test_plane_histograms_of_codes_match_pybdm_per_plane(cpu_backend):
    rng = np.random.default_rng(7)
    q = rng.integers(0, 2**5, size=(23, 41))
    hist = qubd.ops.plane_histograms(torch.from_numpy(q), 5)
    scores = qubd.ctm.ctm_score(hist)
    for p in range(5):
        assert scores[p].item() == pytest.approx(pybdm_bdm((q >> p) & 1), rel=1e-12)
