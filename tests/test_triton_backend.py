"""The Triton backend gives bit-identical codes, histograms and order statistics to the reference.

Two modes, chosen by the environment of the whole pytest process (Triton decides at import time
whether its kernels are interpreted):

* ``TRITON_INTERPRET=1``: the kernels run on CPU tensors in Triton's interpreter (how CI checks them);
  small inputs, compared with ``qubd.reference`` and pybdm.
* otherwise, with a CUDA device: the ``cuda``-marked tests run the compiled kernels on the GPU and
  compare them with the reference on the CPU (``pytest -m cuda``).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import qubd
from qubd.ops import dispatch
from qubd.range import quant_grid, value_range
from qubd.reference import blocks, order_statistics, quantize

HAVE_TRITON = importlib.util.find_spec("triton") is not None
INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
HAVE_CUDA = torch.cuda.is_available()

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="triton is not installed")
interpreter = pytest.mark.skipif(
    not INTERPRETING,
    reason="set TRITON_INTERPRET=1 for the whole pytest run to check the Triton kernels on CPU tensors",
)
needs_cuda = pytest.mark.skipif(
    not HAVE_CUDA or INTERPRETING, reason="needs a CUDA device, and TRITON_INTERPRET unset (compiled kernels)"
)

FLOATS = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
HALF_FLOATS = [torch.float32, torch.bfloat16, torch.float16]


@pytest.fixture
def triton_backend(with_backend):
    assert dispatch.unavailable("triton", "cpu") is None, dispatch.unavailable("triton", "cpu")
    with_backend("triton")


def random_weights(
    shape: tuple[int, ...], dtype: torch.dtype, seed: int, device: str = "cpu"
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 0.05).to(dtype).to(device)


def heavy_tailed(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Student-t(2): a few outliers stretch the min/max range, so the high planes are near-constant."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=g)
    return z / torch.randn((2, *shape), generator=g).pow(2).mean(0).sqrt()


def grid(w: torch.Tensor, bits: int, clip: float | None) -> tuple[float, float, int]:
    g = quant_grid(*value_range(w, clip, torch.ops.qubd.order_statistics), bits)
    return g.lo, g.delta, bits


# --------------------------------------------------------------------------------------------------
# Interpreter: CPU tensors, QUBD_BACKEND=triton.


@interpreter
def test_triton_backend_is_dispatched(triton_backend, monkeypatch):
    from qubd.backends.triton import histograms

    assert dispatch.routed("cpu") == "triton"
    calls, real = [], histograms._histograms
    monkeypatch.setattr(histograms, "_histograms", lambda *a, **kw: calls.append(a) or real(*a, **kw))
    torch.ops.qubd.weight_histograms(torch.randn(8, 8), -3.0, 0.1, 4)
    assert calls


@interpreter
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("clip", [None, 99.9])
def test_codes_equal_reference(triton_backend, dtype, clip):
    w = random_weights((37, 53), dtype, seed=1)
    for bits in (1, 4, 8, 11, 16):
        lo, delta, _ = grid(w, bits, clip)
        assert torch.equal(qubd.ops.quantize(w, bits, clip), quantize.quantize_to_grid(w, lo, delta, bits))


@interpreter
def test_codes_round_half_to_even(triton_backend):
    # (w - 0) / 1 lands exactly on every half-integer: ties go to the even code.
    w = torch.arange(64, dtype=torch.float32).reshape(8, 8) * 0.5
    got = torch.ops.qubd.quantize_to_grid(w, 0.0, 1.0, 8)
    assert torch.equal(got, quantize.quantize_to_grid(w, 0.0, 1.0, 8))
    assert got[0, 1] == 0 and got[0, 3] == 2 and got[0, 5] == 2


@interpreter
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(4, 4), (7, 301), (300, 9), (61, 67)])
@pytest.mark.parametrize("clip", [None, 99.9])
def test_weight_histograms_equal_reference(triton_backend, dtype, shape, clip):
    w = random_weights(shape, dtype, seed=shape[0])
    lo, delta, bits = grid(w, 8, clip)
    expected = blocks.weight_histograms(w, lo, delta, bits)
    assert torch.equal(torch.ops.qubd.weight_histograms(w, lo, delta, bits), expected)


def _hypothesis_weights(
    kind: str, rows: int, cols: int, bits: int, dtype: torch.dtype, seed: int
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "halves":  # min 0, max 2**bits - 1: delta is exactly 1 and every x.5 is a tie
        w = torch.randint(0, 2 * (2**bits - 1) + 1, (rows, cols), generator=g).to(torch.float64) / 2
        w.view(-1)[:2] = torch.tensor([0.0, 2**bits - 1.0], dtype=torch.float64)
        return w.to(dtype)
    return (heavy_tailed((rows, cols), seed) if kind == "heavy" else torch.randn(rows, cols, generator=g)).to(
        dtype
    )


@interpreter
@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    rows=st.integers(4, 41),
    cols=st.integers(4, 90),
    bits=st.integers(1, 16),
    dtype=st.sampled_from(FLOATS),
    kind=st.sampled_from(["normal", "heavy", "halves"]),
    clip=st.sampled_from([None, 99.9, 90.0]),
    seed=st.integers(0, 2**31),
)
def test_random_inputs_equal_reference(rows, cols, bits, dtype, kind, clip, seed):
    # Halves are exact up to the dtype's precision: 2**b - 1 + 0.5 needs b + 1 significant bits.
    exact_bits = {torch.float16: 10, torch.bfloat16: 7}.get(dtype, 16)
    w = _hypothesis_weights(kind, rows, cols, min(bits, exact_bits), dtype, seed)
    with dispatch.using("triton"):
        lo, delta, _ = grid(w, bits, clip)
        codes = torch.ops.qubd.quantize_to_grid(w, lo, delta, bits)
        hist = torch.ops.qubd.weight_histograms(w, lo, delta, bits)
        dispatch.use("torch")
        assert (lo, delta) == grid(w, bits, clip)[:2]  # the range from the reference
    assert torch.equal(codes, quantize.quantize_to_grid(w, lo, delta, bits))
    assert torch.equal(hist, blocks.weight_histograms(w, lo, delta, bits))


@interpreter
@pytest.mark.parametrize("bits", [1, 3, 5, 13, 16])
def test_weight_histograms_all_bit_widths(triton_backend, bits):
    w = heavy_tailed((45, 66), seed=bits)
    lo, delta, _ = grid(w, bits, None)
    assert torch.equal(
        torch.ops.qubd.weight_histograms(w, lo, delta, bits), blocks.weight_histograms(w, lo, delta, bits)
    )


@interpreter
def test_private_copies_and_tile_loops_sum_exactly(triton_backend, monkeypatch):
    from qubd.backends.triton import histograms

    # Tiny tiles and one copy per tile: several programs, each looping over tiles into its own copy.
    monkeypatch.setattr(histograms, "TILE_BLOCKS", 16)
    monkeypatch.setattr(histograms, "TILES_PER_COPY", 1)
    w = heavy_tailed((131, 250), seed=7)
    lo, delta, bits = grid(w, 8, 99.9)
    assert torch.equal(
        histograms.weight_histograms(w, lo, delta, bits), blocks.weight_histograms(w, lo, delta, bits)
    )


@interpreter
@pytest.mark.parametrize("bits", [3, 8, 12])
def test_batched_histograms_equal_reference(triton_backend, monkeypatch, bits):
    from qubd.backends.triton import histograms

    # Tensors above 2000 elements take the single-tensor launch, the others share one per dtype.
    monkeypatch.setattr(histograms, "BATCH_MAX_ELEMENTS", 2000)
    g = torch.Generator().manual_seed(bits)
    shapes = [(37, 53), (4, 4), (3, 100), (130, 9), (64, 64), (8, 1000), (5, 5), (300, 40)]
    dtypes = [torch.float32, torch.bfloat16, torch.float32, torch.float16, torch.float64, torch.bfloat16]
    ws = [(torch.randn(shape, generator=g) * 0.1).to(dtypes[i % 6]) for i, shape in enumerate(shapes)]
    ws += [
        torch.full((12, 12), 0.5),
        torch.randn(40, 80, generator=g)[:, ::2],
        heavy_tailed((96, 200), seed=9),
    ]
    grids = [grid(w, bits, None) for w in ws]
    # Both orders: tensors lie before and after the first one in memory (negative element offsets).
    for order in (ws, ws[::-1]):
        grids_in_order = grids if order is ws else grids[::-1]
        got = torch.ops.qubd.weight_histograms_batched(
            order, [gr[0] for gr in grids_in_order], [gr[1] for gr in grids_in_order], bits
        )
        for w, (lo, delta, _), hist in zip(order, grids_in_order, got, strict=True):
            if min(w.shape) < 4:
                assert not hist.any()
            else:
                assert torch.equal(hist, blocks.weight_histograms(w, lo, delta, bits))


@interpreter
@pytest.mark.parametrize("clip", [None, 99.0])
def test_qubd_batched_equals_qubd_per_tensor(triton_backend, monkeypatch, clip):
    from qubd.backends.triton import histograms
    from qubd.ops import library

    monkeypatch.setattr(histograms, "BATCH_MAX_ELEMENTS", 3000)  # (80, 50) gets a launch of its own
    monkeypatch.setattr(library, "BATCH_HISTOGRAM_BYTES", 4 * 8 * 65536 * 8)  # 4 tensors per call
    shapes = [(37, 53), (4, 4), (80, 50), (16, 3, 3, 3), (9, 40), (12, 12), (5, 31)]
    ws = [heavy_tailed(shape, seed=i).to(FLOATS[i % 4]) for i, shape in enumerate(shapes)]
    got = qubd.ops.qubd_batched(ws, 8, clip)
    assert torch.equal(got, torch.stack([qubd.ops.qubd(w, 8, clip) for w in ws]))
    dispatch.use("native")  # same histograms; the CTM sum may round differently
    native = torch.stack([qubd.ops.qubd(w, 8, clip) for w in ws])
    np.testing.assert_allclose(got.numpy(), native.numpy(), rtol=1e-12)


@interpreter
@pytest.mark.parametrize("clip", [None, 99.9])
def test_score_report_equals_native(triton_backend, monkeypatch, clip):
    # The whole scoring path (groups of tensors, batched ranges and histograms, baselines, a tensor
    # skipped for NaN) through the Triton kernels gives the native backend's report.
    tensors = {
        f"layer{i}.weight": heavy_tailed(shape, seed=i).to(FLOATS[i % 3])
        for i, shape in enumerate([(24, 40), (16, 3, 3, 3), (40, 24), (33, 20), (8, 64)])
    }
    tensors["layer3.weight"][2, 5] = float("nan")
    tensors["layer1.bias"] = torch.randn(16)
    triton_report = qubd.score(tensors, bits=6, clip=clip, baseline="shuffle", repeats=2, nonfinite="skip")
    dispatch.use("native")
    native_report = qubd.score(tensors, bits=6, clip=clip, baseline="shuffle", repeats=2, nonfinite="skip")
    assert [t.skipped for t in triton_report.tensors] == [t.skipped for t in native_report.tensors]
    assert triton_report.tensors[3].skipped == "non-finite values (1 NaN/Inf)"
    for got, expected in zip(triton_report.scored, native_report.scored, strict=True):
        np.testing.assert_allclose(got.planes, expected.planes, rtol=1e-12)
        for run, native_run in zip(got.baseline_runs, expected.baseline_runs, strict=True):
            np.testing.assert_allclose(run["bdm"], native_run["bdm"], rtol=1e-12)


@interpreter
@pytest.mark.parametrize(
    ("dtype", "bits"),
    [(torch.bool, 1), (torch.uint8, 8), (torch.int16, 11), (torch.int32, 16), (torch.int64, 5)],
)
def test_plane_histograms_equal_reference(triton_backend, dtype, bits):
    high = 2 if dtype == torch.bool else 2**bits
    q = torch.randint(0, high, (29, 38), generator=torch.Generator().manual_seed(bits)).to(dtype)
    assert torch.equal(qubd.ops.plane_histograms(q, bits), blocks.plane_histograms(q, bits))


@interpreter
@pytest.mark.parametrize("dtype", HALF_FLOATS)
@pytest.mark.parametrize("clip", [None, 99.9])
def test_constant_tensor_is_all_zero_blocks(triton_backend, dtype, clip):
    w = torch.full((9, 14), 0.3, dtype=dtype)
    lo, delta, bits = grid(w, 8, clip)
    hist = torch.ops.qubd.weight_histograms(w, lo, delta, bits)
    assert torch.equal(hist, blocks.weight_histograms(w, lo, delta, bits))
    assert (hist[:, 0] == 2 * 3).all() and hist.sum() == 8 * 2 * 3
    assert torch.equal(qubd.ops.quantize(w, bits, clip), torch.zeros(9, 14, dtype=torch.uint8))


@interpreter
@pytest.mark.parametrize("dtype", HALF_FLOATS)
@pytest.mark.parametrize("clip", [None, 99.9])
def test_qubd_equals_pybdm(triton_backend, dtype, clip):
    from tests.oracles import paper_qubd

    w = heavy_tailed((20, 27), seed=3).to(dtype)
    np.testing.assert_allclose(qubd.ops.qubd(w, 8, clip).numpy(), paper_qubd(w, 8, clip), rtol=1e-12)


@interpreter
def test_qubd_of_conv_kernel_equals_pybdm(triton_backend):
    from tests.oracles import paper_qubd

    w = heavy_tailed((8, 3, 3, 3), seed=4)
    np.testing.assert_allclose(qubd.ops.qubd(w, 4, None).numpy(), paper_qubd(w, 4, None), rtol=1e-12)


@interpreter
def test_bdm_equals_pybdm(triton_backend):
    from tests.oracles import pybdm_bdm

    x = torch.rand(23, 42, generator=torch.Generator().manual_seed(5)) < 0.3
    assert qubd.ops.bdm(x).item() == pytest.approx(pybdm_bdm(x.numpy()), rel=1e-12)


@interpreter
def test_ctm_score_equals_reference(triton_backend):
    from qubd.reference.ctm_score import ctm_score

    g = torch.Generator().manual_seed(8)
    hist = torch.randint(0, 3, (3, 65536), generator=g) * torch.randint(0, 10**6, (3, 65536), generator=g)
    hist[2] = 0
    hist[2, 0xFFFF] = 5
    got = torch.ops.qubd.ctm_score(hist)
    np.testing.assert_allclose(got.numpy(), ctm_score(hist).numpy(), rtol=1e-13)


@interpreter
@pytest.mark.parametrize("dtype", FLOATS)
def test_order_statistics_equal_reference(triton_backend, dtype):
    w = random_weights((123, 45), dtype, seed=11)
    w[0, :10] = 0.0
    w[1, :10] = -0.0  # signed zeros compare equal: either order is a correct sort
    w[2, :7] = w[3, 0]  # ties
    ranks = [0, 1, 17, 2000, 2767, 5534]
    assert torch.equal(torch.ops.qubd.order_statistics(w, ranks), order_statistics.order_statistics(w, ranks))


@interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_order_statistics_after_compaction(triton_backend, monkeypatch, dtype):
    from qubd.backends.triton import order_statistics as triton_os

    monkeypatch.setattr(triton_os, "COMPACT_FRACTION", 1)  # always compact after the first pass
    w = heavy_tailed((50, 101), seed=12).to(dtype)
    ranks = [0, 2, 2524, 5049]
    assert torch.equal(triton_os.order_statistics(w, ranks), order_statistics.order_statistics(w, ranks))


@interpreter
def test_order_statistics_ties_and_extremes(triton_backend):
    w = torch.tensor([3.0, -1.0, 3.0, 3.0, 1e-45, -3.4e38, 3.4e38, 0.0])
    ranks = list(range(8))
    assert torch.equal(torch.ops.qubd.order_statistics(w, ranks), torch.sort(w).values)


@interpreter
@pytest.mark.parametrize("dtype", HALF_FLOATS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_order_statistics_refuse_non_finite(triton_backend, dtype, bad):
    w = random_weights((16, 16), dtype, seed=0)
    w[5, 7] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        torch.ops.qubd.order_statistics(w, [3])


@interpreter
@pytest.mark.parametrize("clip", [99.9, 95.0, 50.0])
def test_robust_range_equals_torch_quantile(triton_backend, clip):
    w = heavy_tailed((64, 77), seed=13)
    q = (1 - clip / 100) / 2
    lo, hi = value_range(w, clip, torch.ops.qubd.order_statistics)
    assert lo.item() == torch.quantile(w.reshape(-1), q).item()
    assert hi.item() == torch.quantile(w.reshape(-1), 1 - q).item()


# --------------------------------------------------------------------------------------------------
# CUDA: compiled kernels on the GPU against the reference on the CPU (or the reference's torch code
# run on the GPU, chunk by chunk, past 2**31 elements).


def _reference_grid(monkeypatch, w: torch.Tensor, bits: int, clip: float | None) -> tuple[float, float, int]:
    dispatch.use("torch")
    try:
        return grid(w, bits, clip)
    finally:
        dispatch.use("triton")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype", [*HALF_FLOATS, torch.float64])
@pytest.mark.parametrize("shape", [(4, 4), (37, 53), (4099, 1027), (1023, 8195), (6, 5, 7, 11)])
@pytest.mark.parametrize("clip", [None, 99.9])
def test_cuda_equals_cpu_reference(triton_backend, monkeypatch, dtype, shape, clip):
    w = heavy_tailed(shape, seed=sum(shape)).to(dtype)
    w2 = w.flatten(1)
    lo, delta, bits = _reference_grid(monkeypatch, w2, 8, clip)
    dev = w2.cuda()
    assert grid(dev, 8, clip) == (lo, delta, bits)  # the robust range from the GPU order statistics
    codes = quantize.quantize_to_grid(w2, lo, delta, bits)
    assert torch.equal(torch.ops.qubd.quantize_to_grid(dev, lo, delta, bits).cpu(), codes)
    expected = blocks.weight_histograms(w2, lo, delta, bits)
    assert torch.equal(torch.ops.qubd.weight_histograms(dev, lo, delta, bits).cpu(), expected)
    assert torch.equal(qubd.ops.plane_histograms(codes.cuda(), bits).cpu(), expected)
    from qubd.ctm.score import ctm_score

    np.testing.assert_allclose(
        qubd.ops.qubd(w.cuda(), 8, clip).cpu().numpy(), ctm_score(expected), rtol=1e-12
    )


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("compact_fraction", [16, 1])  # 1: always compact after the first pass
def test_cuda_order_statistics_equal_kthvalue(triton_backend, monkeypatch, dtype, compact_fraction):
    from qubd.backends.triton import order_statistics as triton_os

    monkeypatch.setattr(triton_os, "COMPACT_FRACTION", compact_fraction)
    w = heavy_tailed((3001, 1999), seed=21).to(dtype)
    w[0, :100] = 0.0
    w[1, :100] = -0.0
    w[2, :1000] = w[5, 5]
    n = w.numel()
    ranks = [0, 1, 99, n // 3, n // 2, n - 2, n - 1]
    got = torch.ops.qubd.order_statistics(w.cuda(), ranks).cpu()
    assert torch.equal(got, order_statistics.order_statistics(w, ranks))
    bad = w.cuda()
    bad[7, 7] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        torch.ops.qubd.order_statistics(bad, [3])


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype", HALF_FLOATS)
@pytest.mark.parametrize("clip", [None, 99.9])
def test_cuda_constant_tensor(triton_backend, dtype, clip):
    w = torch.full((1001, 517), -0.7, dtype=dtype, device="cuda")
    hist = torch.ops.qubd.weight_histograms(w, *grid(w, 8, clip))
    blocks_count = (1001 // 4) * (517 // 4)
    assert (hist[:, 0] == blocks_count).all() and hist.sum() == 8 * blocks_count
    assert (qubd.ops.quantize(w, 8, clip) == 0).all()


@pytest.mark.cuda
@needs_cuda
def test_cuda_batched_histograms(triton_backend, monkeypatch):
    shapes = [(4, 4), (37, 53), (768, 768), (3072, 768), (5, 3000), (1027, 4099), (30522, 768)]
    ws = [
        heavy_tailed(shape, seed=i).to(torch.bfloat16 if i % 2 else torch.float32)
        for i, shape in enumerate(shapes)
    ]
    grids = [_reference_grid(monkeypatch, w, 8, 99.9) for w in ws]
    got = torch.ops.qubd.weight_histograms_batched(
        [w.cuda() for w in ws], [gr[0] for gr in grids], [gr[1] for gr in grids], 8
    ).cpu()
    for w, (lo, delta, bits), hist in zip(ws, grids, got, strict=True):
        assert torch.equal(hist, blocks.weight_histograms(w, lo, delta, bits))


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("clip", [None, 99.9])
def test_cuda_qubd_batched_equals_cpu(triton_backend, monkeypatch, clip):
    shapes = [(4, 4), (37, 53), (768, 768), (64, 3, 3, 3), (5, 3000), (30522, 768)] * 12
    ws = [random_weights(shape, FLOATS[i % 4], seed=i) for i, shape in enumerate(shapes)]
    got = qubd.ops.qubd_batched([w.cuda() for w in ws], 8, clip).cpu()
    assert torch.equal(got, torch.stack([qubd.ops.qubd(w.cuda(), 8, clip) for w in ws]).cpu())
    dispatch.use("native")
    native = torch.stack([qubd.ops.qubd(w, 8, clip) for w in ws])
    np.testing.assert_allclose(got.numpy(), native.numpy(), rtol=1e-12)


def _exact_bf16_order_statistics(w: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    """Sorted values of a bf16 tensor of any size at ``ranks``, by counting its 65,536 bit patterns."""
    counts = torch.zeros(65536, dtype=torch.int64, device=w.device)
    for chunk in w.reshape(-1).split(1 << 28):
        counts += torch.bincount(chunk.view(torch.int16).to(torch.int32) + 32768, minlength=65536)
    values = (torch.arange(65536, device=w.device) - 32768).to(torch.int16).view(torch.bfloat16).float()
    present = counts > 0
    values, order = values[present].sort(stable=True)
    cumulative = counts[present][order].cumsum(0)
    at = torch.searchsorted(cumulative, torch.tensor(ranks, device=w.device), right=True)
    return values[at].cpu()


@pytest.mark.cuda
@needs_cuda
@pytest.mark.slow
def test_cuda_past_2_31_elements(triton_backend):
    rows, cols = 65536, 36004  # 2.36e9 elements (> 2**31), 4.7 GB of bf16
    if torch.cuda.mem_get_info()[0] < 24 * 2**30:
        pytest.skip("needs 24 GiB of free GPU memory")
    g = torch.Generator(device="cuda").manual_seed(0)
    w = torch.randn(rows, cols, generator=g, device="cuda", dtype=torch.bfloat16)
    w[-1, -1] = 9.0  # the maximum sits past 2**31
    n = w.numel()
    ranks = [0, 12345, n // 2, (1 << 31) + 7, n - 2, n - 1]
    assert torch.equal(
        torch.ops.qubd.order_statistics(w, ranks).cpu(), _exact_bf16_order_statistics(w, ranks)
    )

    lo, delta, bits = grid(w, 8, 99.9)
    codes = torch.ops.qubd.quantize_to_grid(w, lo, delta, bits)
    expected = torch.zeros(bits, 65536, dtype=torch.int64, device="cuda")
    chunk_rows = 4096
    for r in range(0, rows, chunk_rows):
        part = w[r : r + chunk_rows]
        part_codes = quantize.quantize_to_grid(part, lo, delta, bits)
        assert torch.equal(codes[r : r + chunk_rows], part_codes), r
        expected += blocks.plane_histograms(part_codes, bits)
    assert torch.equal(torch.ops.qubd.weight_histograms(w, lo, delta, bits), expected)
    assert torch.equal(torch.ops.qubd.plane_histograms(codes, bits), expected)
