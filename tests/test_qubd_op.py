"""ops.qubd and ops.quantize against the paper's pipeline (its quantiser, then pybdm per plane)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import qubd
from tests.oracles import paper_quantize, paper_qubd, pybdm_bdm


def weights(kind: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "normal":
        return torch.randn(shape, generator=g)
    if kind == "heavy":  # Student-t with 2 degrees of freedom: a few huge outliers
        z = torch.randn(shape, generator=g)
        chi2 = torch.randn((2, *shape), generator=g).pow(2).sum(0)
        return z / torch.sqrt(chi2 / 2)
    if kind == "uniform":
        return torch.rand(shape, generator=g) * 0.02 - 0.01
    raise ValueError(kind)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("clip", [None, 99.9])
@pytest.mark.parametrize("kind", ["normal", "heavy"])
def test_qubd_2d_equals_paper_pipeline(cpu_backend, bits, clip, kind):
    w = weights(kind, (48, 61), seed=bits)
    np.testing.assert_allclose(qubd.ops.qubd(w, bits, clip).numpy(), paper_qubd(w, bits, clip), rtol=1e-12)


@pytest.mark.parametrize("clip", [None, 99.9])
def test_qubd_16_bits(cpu_backend, clip):
    w = weights("normal", (32, 36), seed=16)
    np.testing.assert_allclose(qubd.ops.qubd(w, 16, clip).numpy(), paper_qubd(w, 16, clip), rtol=1e-12)


@pytest.mark.parametrize("clip", [None, 99.9, 95.0])
def test_qubd_conv_kernel_is_flattened(cpu_backend, clip):
    w = weights("heavy", (16, 3, 3, 5), seed=3)  # 16 x 45 after flatten(1)
    np.testing.assert_allclose(qubd.ops.qubd(w, 8, clip).numpy(), paper_qubd(w, 8, clip), rtol=1e-12)


@pytest.mark.parametrize("bits", [1, 4, 8, 12])
@pytest.mark.parametrize("clip", [None, 99.9])
def test_quantize_equals_paper_quantiser(cpu_backend, bits, clip):
    w = weights("heavy", (70, 33), seed=bits)
    codes = qubd.ops.quantize(w, bits, clip)
    assert codes.dtype == (torch.uint8 if bits <= 8 else torch.int32)
    np.testing.assert_array_equal(codes.numpy().astype(np.int64), paper_quantize(w, bits, clip))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("clip", [None, 99.9])
def test_half_precision_weights_are_upcast(cpu_backend, dtype, clip):
    w = weights("normal", (40, 40), seed=5).to(dtype)
    np.testing.assert_allclose(qubd.ops.qubd(w, 8, clip).numpy(), paper_qubd(w.float(), 8, clip), rtol=1e-12)


@pytest.mark.parametrize("bits", [1, 8])
def test_constant_tensor_is_scored_as_zero_planes(cpu_backend, bits):
    w = torch.full((20, 20), 0.3)
    got = qubd.ops.qubd(w, bits)
    np.testing.assert_allclose(got.numpy(), paper_qubd(w, bits, None), rtol=1e-12)
    assert (got > 0).all()  # an all-zero plane still has complexity; never a silent 0.0
    assert int(qubd.ops.quantize(w, bits).max()) == 0


def test_near_constant_tensor_is_all_zero_codes(cpu_backend):
    w = 1.0 + torch.rand(8, 8) * 1e-9
    assert int(qubd.ops.quantize(w, 8).max()) == 0


def test_quantize_keeps_shape(cpu_backend):
    w = weights("normal", (4, 3, 5))
    assert qubd.ops.quantize(w, 4).shape == w.shape


def test_ops_are_torch_library_ops():
    w = weights("normal", (8, 8))
    assert torch.equal(torch.ops.qubd.qubd(w, 4, None), qubd.ops.qubd(w, 4))
    assert torch.equal(torch.ops.qubd.quantize.default(w, 4, 99.0), qubd.ops.quantize(w, 4, 99.0))


@pytest.mark.parametrize("clip", [None, 99.9])
def test_parameters_score_without_autograd(cpu_backend, clip, recwarn):
    w = torch.nn.Linear(40, 24).weight  # requires_grad
    got = qubd.ops.qubd(w, 4, clip)
    assert got.grad_fn is None and not got.requires_grad
    assert not [str(r.message) for r in recwarn.list if "autograd" in str(r.message)]
    np.testing.assert_allclose(got.numpy(), paper_qubd(w.detach(), 4, clip), rtol=1e-12)


def test_strided_input_equals_its_contiguous_copy(cpu_backend):
    w = weights("normal", (64, 90))[::2, ::3]
    assert not w.is_contiguous()
    assert torch.equal(qubd.ops.qubd(w, 8, 99.9), qubd.ops.qubd(w.contiguous(), 8, 99.9))
    assert torch.equal(qubd.ops.quantize(w, 8), qubd.ops.quantize(w.contiguous(), 8))


def mixed_batch() -> list[torch.Tensor]:
    """Tensors of several shapes and dtypes, a conv kernel and a constant among them."""
    return [
        weights("normal", (48, 61), seed=1),
        weights("heavy", (16, 3, 3, 5), seed=2),
        weights("uniform", (9, 130), seed=3).to(torch.bfloat16),
        torch.full((20, 20), 0.3),
        weights("heavy", (33, 17), seed=4).to(torch.float16),
        weights("normal", (12, 40), seed=5).double(),
    ]


@pytest.mark.parametrize("clip", [None, 99.9])
def test_qubd_batched_equals_paper_pipeline(cpu_backend, clip):
    ws = mixed_batch()
    got = qubd.ops.qubd_batched(ws, 6, clip)
    assert got.shape == (len(ws), 6) and got.dtype == torch.float64
    for w, row in zip(ws, got, strict=True):
        expected = paper_qubd(w.double() if w.dtype == torch.float64 else w.float(), 6, clip)
        np.testing.assert_allclose(row.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("clip", [None, 90.0])
def test_qubd_batched_is_qubd_per_tensor_across_launches(cpu_backend, monkeypatch, clip):
    from qubd.ops import library

    # Histograms of 3 tensors per launch at 4 bits: the 6 tensors take two launches.
    monkeypatch.setattr(library, "BATCH_HISTOGRAM_BYTES", 3 * 4 * 65536 * 8)
    ws = mixed_batch()
    expected = torch.stack([qubd.ops.qubd(w, 4, clip) for w in ws])
    assert torch.equal(qubd.ops.qubd_batched(ws, 4, clip), expected)


def test_qubd_batched_of_nothing():
    got = qubd.ops.qubd_batched([], 5)
    assert got.shape == (0, 5) and got.dtype == torch.float64


def test_numpy_arrays_are_taken_as_cpu_tensors():
    w = weights("normal", (24, 20)).numpy()
    np.testing.assert_allclose(
        qubd.ops.qubd(w, 8, 99.9).numpy(), paper_qubd(torch.from_numpy(w), 8, 99.9), rtol=1e-12
    )
    codes = qubd.ops.quantize(w, 8)
    np.testing.assert_array_equal(
        codes.numpy().astype(np.int64), paper_quantize(torch.from_numpy(w), 8, None)
    )
    read_only = w.copy()
    read_only.flags.writeable = False
    batched = qubd.ops.qubd_batched([read_only, w], 8)
    np.testing.assert_allclose(
        batched.numpy(), np.stack([paper_qubd(torch.from_numpy(w), 8, None)] * 2), rtol=1e-12
    )
    hist = qubd.ops.plane_histograms(codes.numpy(), 8)
    assert hist.sum().item() == 8 * (24 // 4) * (20 // 4)
    binary = w > 0
    assert qubd.ops.bdm(binary).item() == pytest.approx(pybdm_bdm(binary), rel=1e-12)


@pytest.mark.parametrize("op", ["qubd", "quantize", "bdm", "plane_histograms"])
def test_a_non_tensor_is_a_one_line_error(op):
    args = (8,) if op in ("quantize", "plane_histograms") else ()
    with pytest.raises(TypeError) as caught:
        getattr(qubd.ops, op)([[1.0] * 8] * 8, *args)
    assert "\n" not in str(caught.value) and "torch.Tensor" in str(caught.value)
    assert len(str(caught.value)) < 120
