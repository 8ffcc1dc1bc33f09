"""The native kernels on every instruction set this CPU runs, against the torch reference.

The kernels pick AVX-512, AVX2 or the baseline build at run time; each path must give the
reference's codes and histograms bit for bit, including the tails that the vector loops hand to
the per-block code and the path that counts small tensors straight into the output.
"""

from __future__ import annotations

import pytest
import torch

from qubd.backends import native
from qubd.ctm.tables import ctm16
from qubd.range import quant_grid, value_range
from qubd.reference import blocks, quantize
from qubd.reference.ctm_score import ctm_score as reference_ctm_score

_C = pytest.importorskip("qubd._C")

ISAS = _C.supported_isas()
FLOATS = [torch.float32, torch.bfloat16, torch.float16, torch.float64]


def each_isa():
    """Runs the loop body once per instruction set; the reference is computed once, outside."""
    try:
        for isa in ISAS:
            _C.set_isa(isa)
            yield isa
    finally:
        _C.set_isa(ISAS[-1])


def weights(rows: int, cols: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, cols, generator=g, dtype=torch.float64) * 3).to(dtype)


def grid(w: torch.Tensor, bits: int) -> tuple[float, float]:
    g = quant_grid(*value_range(w, None, torch.ops.qubd.order_statistics), bits)
    return g.lo, g.delta


def test_supported_isas_start_with_baseline():
    assert ISAS[0] == "baseline"
    assert set(ISAS) <= {"baseline", "avx2", "avx512"}


def test_unknown_instruction_set_is_refused():
    with pytest.raises(ValueError, match="unknown instruction set 'sse9'"):
        _C.set_isa("sse9")


# Widths around the vector loops' 8 (AVX2) and 16 (AVX-512) blocks, the 4096-column chunk and
# columns that are not a multiple of 4; 64 x 4100 has more blocks than the direct-count limit.
SHAPES = [(4, 4), (7, 33), (12, 64), (9, 130), (16, 257), (64, 4100)]


@pytest.mark.parametrize(("rows", "cols"), SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_weight_histograms_equal_reference(rows, cols, dtype):
    w = weights(rows, cols, dtype, rows * cols)
    for bits in (1, 8, 12):
        lo, delta = grid(w, bits)
        expected = blocks.weight_histograms(w, lo, delta, bits)
        for isa in each_isa():
            assert torch.equal(native.weight_histograms(w, lo, delta, bits), expected), (isa, bits)


@pytest.mark.parametrize("dtype", FLOATS)
def test_quantize_equals_reference(dtype):
    w = weights(37, 301, dtype, 5)  # 11137 values: a tail after every vector width
    for bits in (3, 8, 16):
        lo, delta = grid(w, bits)
        expected = quantize.quantize_to_grid(w, lo, delta, bits)
        for isa in each_isa():
            assert torch.equal(native.quantize_to_grid(w, lo, delta, bits), expected), (isa, bits)


@pytest.mark.parametrize("bits", [8, 12])
def test_threads_and_repeated_codes_equal_reference(bits):
    # 2 threads (2 x 2**15 blocks), and planes that repeat one code for long runs (weights on a few
    # levels, and a block of zeros): the 8-bit per-thread counters wrap (one code counted 2**15
    # times in each thread), and their sum with the wraps.
    w = weights(1024, 1024, torch.float32, 3)
    w[:256] = w[:256].sign()
    w[512:768] = 0.0
    lo, delta = grid(w, bits)
    expected = blocks.weight_histograms(w, lo, delta, bits)
    assert expected.max() > 2**14  # the counters wrap
    threads = _C.get_num_threads()
    try:
        for isa in each_isa():
            for n in (1, 2):
                _C.set_num_threads(n)
                assert torch.equal(native.weight_histograms(w, lo, delta, bits), expected), (isa, n)
    finally:
        _C.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16bit_float_codes_equal_reference(dtype):
    # 16-bit floats through the threaded pass (past 2**20 weights), converted to float in the
    # vectorised quantiser: subnormals, signed zeros, values outside the grid (clipped) and exact ties.
    w = weights(1024, 1024, dtype, 11)
    special = torch.tensor([0.0, -0.0, 1e-40, -1e-40, 6e-8, 1e4, -1e4, 0.5, -0.5], dtype=torch.float32)
    w.view(-1)[: special.numel()] = special.to(dtype)
    for bits, clip in ((1, None), (4, 99.0), (8, None), (8, 90.0)):
        g = quant_grid(*value_range(w, clip, torch.ops.qubd.order_statistics), bits)
        expected = blocks.weight_histograms(w, g.lo, g.delta, bits)
        for isa in each_isa():
            assert torch.equal(native.weight_histograms(w, g.lo, g.delta, bits), expected), (isa, bits, clip)


@pytest.mark.parametrize(("dtype", "bits"), [(torch.uint8, 8), (torch.int16, 11), (torch.int32, 16)])
def test_code_histograms_equal_reference(dtype, bits):
    q = torch.randint(0, 2**bits, (20, 1030), generator=torch.Generator().manual_seed(bits)).to(dtype)
    expected = blocks.plane_histograms(q, bits)
    for isa in each_isa():
        assert torch.equal(native.plane_histograms(q, bits), expected), isa


def weight_scores(w: torch.Tensor, lo: float, delta: float, bits: int, ones: torch.Tensor | None = None):
    """The scores per plane; and the ones per plane into ``ones``, if given."""
    scores = torch.empty(bits, dtype=torch.float64)
    _C.weight_scores(
        w.data_ptr(), native.DTYPE_CODES[w.dtype], w.shape[0], w.shape[1], lo, delta, bits,
        ctm16("cpu").data_ptr(), scores.data_ptr(), 0 if ones is None else ones.data_ptr(),
    )  # fmt: skip
    return scores


# No block (3 x 9), one block, a few, the last sparse size (4096 blocks) and the first dense one.
SCORE_SHAPES = [(3, 9), (4, 4), (5, 17), (13, 70), (256, 256), (4, 16388)]


@pytest.mark.parametrize(("rows", "cols"), SCORE_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_weight_scores_equal_the_sum_over_reference_histograms(rows, cols, dtype):
    # The same doubles as the native sum over dense histograms (both add the terms in ascending
    # code order); the torch sum, in another order, agrees to rounding.
    w = weights(rows, cols, dtype, rows + cols)
    for bits in (1, 8, 11):
        lo, delta = grid(w, bits)
        histograms = blocks.weight_histograms(w, lo, delta, bits)
        expected = native.ctm_score(histograms)
        torch.testing.assert_close(expected, reference_ctm_score(histograms), rtol=1e-12, atol=1e-9)
        # The ones per plane: counted cell by cell from the reference codes, an independent count.
        codes = quantize.quantize_to_grid(w, lo, delta, bits).to(torch.int64).reshape(-1, 1)
        expected_ones = ((codes >> torch.arange(bits)) & 1).sum(dim=0)
        for isa in each_isa():
            assert torch.equal(weight_scores(w, lo, delta, bits), expected), (isa, bits)
            ones = torch.full((bits,), -1, dtype=torch.int64)
            assert torch.equal(weight_scores(w, lo, delta, bits, ones), expected), (isa, bits)
            assert torch.equal(ones, expected_ones), (isa, bits)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", ["random", "sorted", "few values"])
def test_large_order_statistics_equal_a_sort(dtype, layout):
    # Past 2**21 values the radix selection refines the wanted buckets before gathering them.
    n = (1 << 21) + 7
    w = torch.randn(n, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(dtype)
    if layout == "sorted":
        w = w.sort().values.flip(0)
    elif layout == "few values":
        w = (w * 2).round()
    ordered = w.sort().values
    for ranks in (
        [0, 1, n // 1000, n - 1],
        [n // 2, n // 2 + 1],
        [n - 1 - n // 1000],
        [3, 9, 27, n // 3, n - 2],
    ):
        assert torch.equal(native.order_statistics(w, ranks), ordered[ranks]), ranks


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_large_order_statistics_refuse_non_finite(bad):
    w = torch.randn(1 << 22, generator=torch.Generator().manual_seed(1))
    w[12345] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        native.order_statistics(w, [10, 1 << 21])
