"""Bad input is a clear error naming the problem, never a silent number."""

from __future__ import annotations

import math

import pytest
import torch

import qubd
from qubd.range import value_range, value_ranges


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("clip", [None, 99.9])
def test_non_finite_weights(cpu_backend, bad, clip):
    w = torch.randn(16, 16)
    w[3, 5] = bad
    # One tensor through the op layer: the words alone (no "weights: " before them).
    with pytest.raises(ValueError, match="^weights contain NaN or Inf values$"):
        qubd.ops.qubd(w, 8, clip)
    with pytest.raises(ValueError, match="^weights contain NaN or Inf values$"):
        qubd.ops.quantize(w, 8, clip)


@pytest.mark.parametrize("bits", [0, 17, -1, 2.5, True])
def test_bits_out_of_range(bits):
    with pytest.raises((ValueError, TypeError, RuntimeError), match="bits"):
        qubd.ops.qubd(torch.randn(8, 8), bits)


@pytest.mark.parametrize("clip", [0, -1, 100.5, 1000])
def test_clip_out_of_range(clip):
    with pytest.raises(ValueError, match="clip"):
        qubd.ops.qubd(torch.randn(8, 8), 8, clip)


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8, torch.bool, torch.complex64])
def test_qubd_needs_floating_weights(dtype):
    with pytest.raises(ValueError, match="float"):
        qubd.ops.qubd(torch.ones(8, 8, dtype=dtype))


@pytest.mark.parametrize("shape", [(16,), (3, 16), (16, 3), (2, 1, 8)])
def test_qubd_refuses_tensors_without_a_full_block(shape):
    with pytest.raises(ValueError, match="side < 4|at least 2 dimensions"):
        qubd.ops.qubd(torch.randn(shape))


def test_empty_tensors():
    with pytest.raises(ValueError, match="empty"):
        qubd.ops.qubd(torch.randn(0, 8))
    with pytest.raises(ValueError, match="empty"):
        qubd.ops.bdm(torch.zeros(0, 4))


def test_bdm_needs_binary_input():
    with pytest.raises(ValueError, match="binary"):
        qubd.ops.bdm(torch.tensor([[0, 1, 2, 0]] * 4))
    with pytest.raises(ValueError, match="binary"):
        qubd.ops.bdm(torch.full((4, 4), 0.5))


def test_bdm_needs_2d_input():
    with pytest.raises(ValueError, match="2D"):
        qubd.ops.bdm(torch.zeros(4, 4, 4, dtype=torch.bool))


def test_bdm_refuses_arrays_smaller_than_a_block():
    # pybdm raises here too (its BDM is 0 for an empty decomposition).
    with pytest.raises(ValueError, match="side < 4"):
        qubd.ops.bdm(torch.zeros(3, 10, dtype=torch.bool))


def test_plane_histograms_check_codes():
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        qubd.ops.plane_histograms(torch.full((8, 8), 16), 4)
    with pytest.raises(ValueError, match="integer"):
        qubd.ops.plane_histograms(torch.zeros(8, 8), 4)
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        qubd.ops.plane_histograms(torch.full((8, 8), -1), 4)


def test_not_a_tensor():
    with pytest.raises((TypeError, RuntimeError)):
        qubd.ops.qubd([[1.0] * 8] * 8)


def test_range_wider_than_float32(cpu_backend):
    w = torch.randn(8, 8)
    w[0, 0], w[0, 1] = -3e38, 3e38
    with pytest.raises(ValueError, match="wider than"):
        qubd.ops.qubd(w)
    assert qubd.ops.qubd(w.double()).isfinite().all()  # float64 holds the span


@pytest.mark.parametrize("clip", [None, 99.9])
@pytest.mark.parametrize("n", [16, 70_000])  # with clipping: selected in a batch, or on its own
def test_nan_or_inf_is_refused_in_one_wording(cpu_backend, clip, n):
    ws = [torch.randn(n), torch.randn(n)]
    ws[1][5] = math.inf
    with pytest.raises(ValueError, match=r"^layer\.1: weights contain NaN or Inf values$"):
        value_ranges(ws, clip, torch.ops.qubd.order_statistics, ["layer.0", "layer.1"])
    with pytest.raises(ValueError, match="^weights contain NaN or Inf values$"):  # one tensor, no name
        value_range(ws[1], clip, torch.ops.qubd.order_statistics)


@pytest.mark.parametrize("clip", [None, 99.9])
def test_batched_names_the_bad_tensor(cpu_backend, clip):
    ws = [torch.randn(8, 8), torch.randn(8, 8), torch.randn(8, 8)]
    ws[2][1, 1] = math.nan
    with pytest.raises(ValueError, match=r"^weights\[2\]: weights contain NaN or Inf values$"):
        qubd.ops.qubd_batched(ws, 8, clip)
    with pytest.raises(ValueError, match=r"weights\[1\].*side < 4"):
        qubd.ops.qubd_batched([torch.randn(8, 8), torch.randn(3, 8)])
    with pytest.raises(ValueError, match=r"weights\[0\].*float"):
        qubd.ops.qubd_batched([torch.ones(8, 8, dtype=torch.int32)])


def test_batched_range_too_wide_names_the_tensor(cpu_backend):
    w = torch.randn(8, 8)
    w[0, 0], w[0, 1] = -3e38, 3e38
    with pytest.raises(ValueError, match=r"weights\[1\].*wider than"):
        qubd.ops.qubd_batched([torch.randn(8, 8), w])


def test_batched_takes_any_iterable_of_tensors():
    ws = [torch.randn(8, 8), torch.randn(12, 8)]
    assert torch.equal(qubd.ops.qubd_batched(w for w in ws), qubd.ops.qubd_batched(ws))


def test_batched_needs_one_device():
    with pytest.raises(ValueError, match="one device"):
        qubd.ops.qubd_batched([torch.randn(8, 8), torch.randn(8, 8, device="meta")])


@pytest.mark.parametrize("ws", [torch.randn(2, 8, 8), [torch.randn(8, 8), "w"]])
def test_batched_needs_a_list_of_tensors(ws):
    with pytest.raises(TypeError, match="sequence of torch.Tensor"):
        qubd.ops.qubd_batched(ws)
