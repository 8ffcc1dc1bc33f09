"""Every CPU backend gives bit-identical codes, histograms and order statistics to the reference."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import qubd
from qubd import backends
from qubd.ops import dispatch
from qubd.range import quant_grid, value_range
from qubd.reference import blocks, order_statistics, quantize
from qubd.reference.ctm_score import ctm_score as reference_ctm_score

FLOATS = [torch.float32, torch.bfloat16, torch.float16, torch.float64]


def test_native_backend_is_built():
    # CI must exercise the native kernels; a missing build would silently test only the reference.
    if os.environ.get("QUBD_ALLOW_NO_NATIVE") == "1":
        pytest.skip("QUBD_ALLOW_NO_NATIVE=1")
    assert "native" in dispatch.available_backends("cpu"), dispatch.unavailable("native", "cpu")


def random_weights(rows: int, cols: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, cols, generator=g, dtype=torch.float64) * 3).to(dtype)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(4, 70),
    cols=st.integers(4, 70),
    bits=st.integers(1, 16),
    dtype=st.sampled_from(FLOATS),
    clip=st.sampled_from([None, 99.9, 90.0]),
    seed=st.integers(0, 2**31),
)
def test_fused_histograms_equal_reference(rows, cols, bits, dtype, clip, seed):
    w = random_weights(rows, cols, dtype, seed)
    with dispatch.using("torch"):
        lo, delta, _ = _grid(w, bits, clip)  # the range from the reference alone
        expected_codes = quantize.quantize_to_grid(w, lo, delta, bits)
        expected_histograms = blocks.weight_histograms(w, lo, delta, bits)
        for backend in dispatch.available_backends("cpu"):
            dispatch.use(backend)
            assert _grid(w, bits, clip) == (lo, delta, bits), backend
            assert torch.equal(qubd.ops.quantize(w, bits, clip), expected_codes), backend
            assert torch.equal(torch.ops.qubd.weight_histograms(w, lo, delta, bits), expected_histograms), (
                backend
            )


@settings(max_examples=20, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(4, 40), st.integers(4, 40)), min_size=1, max_size=6),
    bits=st.integers(1, 16),
    dtype=st.sampled_from(FLOATS),
    seed=st.integers(0, 2**31),
)
def test_batched_histograms_equal_reference(shapes, bits, dtype, seed):
    ws = [random_weights(rows, cols, dtype, seed + i) for i, (rows, cols) in enumerate(shapes)]
    grids = [_grid(w, bits, None) for w in ws]
    lo, delta = [g[0] for g in grids], [g[1] for g in grids]
    expected = torch.stack(
        [blocks.weight_histograms(w, a, d, bits) for w, a, d in zip(ws, lo, delta, strict=True)]
    )
    with dispatch.using(None):
        for backend in dispatch.available_backends("cpu"):
            dispatch.use(backend)
            assert torch.equal(torch.ops.qubd.weight_histograms_batched(ws, lo, delta, bits), expected), (
                backend
            )


# Triton runs on CPU tensors only in its interpreter (TRITON_INTERPRET=1, set by conftest without
# a GPU), slowly: it scores one small float32 shape.
TRITON_SHAPE = (5, 17)
SCORE_BACKENDS = dispatch.available_backends("cpu") + (
    ["triton"] if dispatch.unavailable("triton", "cpu") is None else []
)


# No block (3 x 9), one, a few, the most the native kernel sorts (256 x 256: 4096 blocks) and the
# fewest it counts densely (4 x 16388: 4097 blocks).
@pytest.mark.parametrize(("rows", "cols"), [(3, 9), (4, 4), (5, 17), (13, 70), (256, 256), (4, 16388)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_weight_scores_are_ctm_score_of_the_reference_histograms(rows, cols, dtype):
    w = random_weights(rows, cols, dtype, rows * cols)
    other = random_weights(8, 12, dtype, 1)
    small = (rows, cols) == TRITON_SHAPE and dtype == torch.float32
    score_backends = [b for b in SCORE_BACKENDS if b != "triton" or small]
    for bits in (1, 8) if rows * cols > 4096 else (1, 8, 13):
        with dispatch.using("torch"):
            lo, delta, _ = _grid(w, bits, None)
            other_lo, other_delta, _ = _grid(other, bits, None)
        histograms = blocks.weight_histograms(w, lo, delta, bits)
        expected = reference_ctm_score(histograms)
        with dispatch.using(None):
            for backend in score_backends:
                dispatch.use(backend)
                got = torch.ops.qubd.weight_scores(w, lo, delta, bits)
                # Bit for bit the backend's own ctm_score of the dense histograms (each backend sums
                # in its own order: across backends the doubles agree to rounding).
                assert torch.equal(got, backends.load(backend).ctm_score(histograms)), (backend, bits)
                torch.testing.assert_close(got, expected, rtol=1e-13, atol=0)
                batched = torch.ops.qubd.weight_scores_batched(
                    [other, w], [other_lo, lo], [other_delta, delta], bits
                )
                assert torch.equal(batched[1], got), (backend, bits)
                other_scores = torch.ops.qubd.weight_scores(other, other_lo, other_delta, bits)
                assert torch.equal(batched[0], other_scores), (backend, bits)


# Edge-shaped too: rows or columns past the last block (3 x 9: no block at all, only edge cells).
ONES_SHAPES = [(3, 9), (4, 4), (5, 17), (13, 70), (70, 13), (256, 257), (4, 16389)]


@pytest.mark.parametrize(("rows", "cols"), ONES_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_weight_scores_and_ones_are_the_scores_and_a_count_of_every_cell(rows, cols, dtype):
    w = random_weights(rows, cols, dtype, rows * cols)
    other = random_weights(6, 11, dtype, 2)
    small = (rows, cols) == TRITON_SHAPE and dtype == torch.float32
    score_backends = [b for b in SCORE_BACKENDS if b != "triton" or small]
    for bits in (1, 3, 8) if rows * cols < 4096 else (1, 8):
        with dispatch.using("torch"):
            grids = [_grid(m, bits, None) for m in (other, w)]
        lo, delta = [g[0] for g in grids], [g[1] for g in grids]
        # The oracle: the reference codes of every cell, their bits counted one by one.
        expected_ones = torch.stack(
            [
                (
                    (
                        quantize.quantize_to_grid(m, a, d, bits).to(torch.int64).reshape(-1, 1)
                        >> torch.arange(bits)
                    )
                    & 1
                ).sum(dim=0)
                for m, a, d in zip((other, w), lo, delta, strict=True)
            ]
        )
        with dispatch.using(None):
            for backend in score_backends:
                dispatch.use(backend)
                scores, ones = torch.ops.qubd.weight_scores_and_ones_batched([other, w], lo, delta, bits)
                assert torch.equal(ones, expected_ones), (backend, bits)
                assert torch.equal(
                    scores, torch.ops.qubd.weight_scores_batched([other, w], lo, delta, bits)
                ), (
                    backend,
                    bits,
                )


def _grid(w, bits, clip):
    grid = quant_grid(*value_range(w, clip, torch.ops.qubd.order_statistics), bits)
    return grid.lo, grid.delta, bits


CODE_DTYPE_BITS = {torch.bool: 1, torch.uint8: 8, torch.int16: 15, torch.int32: 16, torch.int64: 16}


@pytest.mark.parametrize(
    ("dtype", "bits"),
    [(dtype, bits) for dtype, most in CODE_DTYPE_BITS.items() for bits in (1, 3, 8, 11, 16) if bits <= most],
)
def test_code_histograms_equal_reference(cpu_backend, dtype, bits):
    high = 2 if dtype == torch.bool else 2**bits
    q = torch.randint(0, high, (29, 38), generator=torch.Generator().manual_seed(bits)).to(dtype)
    assert torch.equal(qubd.ops.plane_histograms(q, bits), blocks.plane_histograms(q, bits))


@pytest.mark.parametrize("dtype", FLOATS)
def test_order_statistics_equal_reference(cpu_backend, dtype):
    w = random_weights(123, 45, dtype, 11)
    w[0, :10] = 0.0
    w[1, :10] = -0.0  # signed zeros compare equal: either order is a correct sort
    ranks = [0, 1, 17, 2000, 5534]
    got = torch.ops.qubd.order_statistics(w, ranks)
    assert torch.equal(got, order_statistics.order_statistics(w, ranks))


@settings(max_examples=30, deadline=None)
@given(
    n=st.sampled_from([1, 7, 1000, 70_000, 300_001]),  # past 2**16 the native kernel uses threads
    dtype=st.sampled_from(FLOATS),
    ranks=st.lists(st.floats(0, 1), min_size=1, max_size=7),  # > 4 wanted buckets: the slow path
    spread=st.sampled_from([1e-3, 1.0, 1e4]),  # 1e-3: fp16 subnormals too
    seed=st.integers(0, 2**31),
)
def test_order_statistics_equal_a_sort(n, dtype, ranks, spread, seed):
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(n, generator=g, dtype=torch.float64) * spread).to(dtype)
    ranks = sorted({int(r * (n - 1)) for r in ranks})
    expected = torch.sort(w.to(torch.float64 if dtype == torch.float64 else torch.float32)).values[ranks]
    with dispatch.using(None):
        for backend in dispatch.available_backends("cpu"):
            dispatch.use(backend)
            assert torch.equal(torch.ops.qubd.order_statistics(w, ranks), expected), backend


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_every_half_precision_value_is_upcast_exactly(with_backend, dtype):
    # The native kernels convert bf16/fp16 themselves (src/qubd/elements.h); the reference is torch's.
    with_backend("native")
    every = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(dtype)
    finite = every[torch.isfinite(every)]
    upcast = finite.float()  # torch's conversion
    got = torch.ops.qubd.order_statistics(finite, list(range(finite.numel())))
    # As multisets of bit patterns: -0.0 and 0.0 are equal, so a sort may order them either way.
    assert torch.equal(got.view(torch.int32).sort().values, upcast.view(torch.int32).sort().values)
    matrix = finite[: finite.numel() // 64 * 64].reshape(64, -1)
    for lo, delta in ((-70000.0, 2.2), (-1e-4, 3e-9)):  # coarse, and fine around the subnormals
        assert torch.equal(
            torch.ops.qubd.quantize_to_grid(matrix, lo, delta, 16),
            quantize.quantize_to_grid(matrix, lo, delta, 16),
        )
        assert torch.equal(
            torch.ops.qubd.weight_histograms(matrix, lo, delta, 16),
            blocks.weight_histograms(matrix, lo, delta, 16),
        )


def test_order_statistics_of_no_ranks(cpu_backend):
    assert torch.ops.qubd.order_statistics(torch.randn(1000), []).numel() == 0


TEAM_CHECK = """
import torch, qubd
from qubd.reference import blocks
w = torch.randn(300_001, generator=torch.Generator().manual_seed(1))
ranks = [0, 1234, 150_000, 299_999, 300_000]
assert torch.equal(torch.ops.qubd.order_statistics(w, ranks), torch.sort(w).values[ranks])
m = w[:300_000].reshape(600, 500)
hist = torch.ops.qubd.weight_histograms(m, -5.0, 0.04, 8)
assert torch.equal(hist, blocks.weight_histograms(m, -5.0, 0.04, 8))
print("ok")
"""


def test_native_kernels_split_work_over_the_team_openmp_starts():
    # With OMP_DYNAMIC the runtime may start fewer threads than asked for (here: more than there are
    # cores), and the kernels must split the work over the threads that did start.
    threads = 2 * (os.cpu_count() or 1) + 1
    env = {**os.environ, "OMP_DYNAMIC": "true", "OMP_NUM_THREADS": str(threads), "QUBD_BACKEND": "native"}
    run = subprocess.run([sys.executable, "-c", TEAM_CHECK], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr


def test_order_statistics_handle_ties_and_extremes(cpu_backend):
    w = torch.tensor([3.0, -1.0, 3.0, 3.0, 1e-45, -3.4e38, 3.4e38, 0.0])
    ranks = list(range(8))
    assert torch.equal(torch.ops.qubd.order_statistics(w, ranks), torch.sort(w).values)


def test_large_blocks_count_split_over_threads(cpu_backend):
    # Enough blocks that the native kernel uses several threads and sums their histograms.
    w = random_weights(1024, 1028, torch.float32, 3)
    lo, delta, bits = _grid(w, 8, None)
    assert torch.equal(
        torch.ops.qubd.weight_histograms(w, lo, delta, bits), blocks.weight_histograms(w, lo, delta, bits)
    )


@pytest.fixture
def environment_backend(monkeypatch):
    """Call with a QUBD_BACKEND value: the ops route as it says until the test ends."""

    def force(name: str) -> None:
        monkeypatch.setenv("QUBD_BACKEND", name)
        dispatch.use_environment()

    yield force
    monkeypatch.undo()
    dispatch.use_environment()


# "cuda" named a backend that never existed (no module behind it): now an unknown name too.
@pytest.mark.parametrize("name", ["fortran", "cuda"])
def test_forcing_an_unknown_backend_is_an_error(environment_backend, name):
    environment_backend(name)
    with pytest.raises(ValueError, match=f"QUBD_BACKEND='{name}'"):
        qubd.ops.qubd(torch.randn(8, 8))
    with pytest.raises(ValueError, match="unknown backend"):
        dispatch.use(name)


def test_forcing_a_backend_without_that_device_is_an_error(environment_backend):
    environment_backend("native")
    assert dispatch.routed("cpu") == "native"
    # The native backend has no CUDA kernels: what the dispatcher runs for CUDA tensors refuses.
    cuda_kernel = torch.ops.qubd.ctm_score.default.redispatch
    with pytest.raises(RuntimeError, match="QUBD_BACKEND=native has no kernel for ctm_score on cuda"):
        cuda_kernel(torch._C.DispatchKeySet("CUDA"), torch.zeros(2, 65536, dtype=torch.int64))


@pytest.mark.parametrize("bits", [3, 8, 12])
def test_wide_matrices_are_walked_in_column_chunks(cpu_backend, bits):
    # Wider than one column chunk of the native kernel (2**14 columns), with a ragged last chunk.
    w = random_weights(9, 3 * (1 << 14) + 7, torch.float32, bits)
    lo, delta, _ = _grid(w, bits, 99.0)
    assert torch.equal(
        torch.ops.qubd.weight_histograms(w, lo, delta, bits), blocks.weight_histograms(w, lo, delta, bits)
    )
    q = quantize.quantize_to_grid(w, lo, delta, bits)
    assert torch.equal(torch.ops.qubd.plane_histograms(q, bits), blocks.plane_histograms(q, bits))


@pytest.mark.parametrize(
    ("op", "args", "match"),
    [
        ("weight_histograms", (torch.randn(8, 8), 0.0, 0.1, 24), "bits"),
        ("weight_histograms", (torch.randn(8, 8), 0.0, 0.1, 0), "bits"),
        ("weight_histograms", (torch.randn(2, 8, 8), 0.0, 0.1, 8), "2D"),
        ("weight_histograms", (torch.ones(8, 8, dtype=torch.int32), 0.0, 0.1, 8), "float"),
        ("quantize_to_grid", (torch.randn(8, 8), 0.0, 0.1, 32), "bits"),
        ("plane_histograms", (torch.full((8, 8), 20), 4), r"\[0, 15\]"),
        ("plane_histograms", (torch.zeros(2, 8, 8, dtype=torch.uint8), 4), "2D"),
        ("ctm_score", (torch.zeros(2, 10, dtype=torch.int64),), "65536"),
        ("ctm_score", (torch.zeros(2, 1 << 16, dtype=torch.int32),), "int64"),
        ("order_statistics", (torch.randn(10), [10]), "ranks"),
        ("order_statistics", (torch.ones(10, dtype=torch.int64), [1]), "float"),
        ("weight_histograms_batched", ([torch.randn(8, 8)], [0.0, 1.0], [0.1], 8), "one entry per tensor"),
        (
            "weight_histograms_batched",
            ([torch.randn(8, 8), torch.randn(2, 8, 8)], [0.0] * 2, [0.1] * 2, 8),
            "2D",
        ),
        (
            "weight_histograms_batched",
            ([torch.ones(8, 8, dtype=torch.int8)], [0.0], [0.1], 8),
            r"weights\[0\]",
        ),
        ("weight_histograms_batched", ([torch.randn(8, 8)], [0.0], [0.1], 17), "bits"),
        # A grid from quant_grid has a finite lo and a delta > 0 (+inf for a constant tensor).
        ("quantize_to_grid", (torch.randn(8, 8), 0.0, 0.0, 8), "delta must be > 0"),
        ("quantize_to_grid", (torch.randn(8, 8), 0.0, -0.1, 8), "delta must be > 0"),
        ("quantize_to_grid", (torch.randn(8, 8), 0.0, float("nan"), 8), "delta must be > 0"),
        ("quantize_to_grid", (torch.randn(8, 8), 0.0, float("-inf"), 8), "delta must be > 0"),
        ("quantize_to_grid", (torch.randn(8, 8), float("nan"), 0.1, 8), "lo must be a finite"),
        ("quantize_to_grid", (torch.randn(8, 8), float("inf"), 0.1, 8), "lo must be a finite"),
        ("weight_histograms", (torch.randn(8, 8), 0.0, 0.0, 8), "delta must be > 0"),
        ("weight_histograms", (torch.randn(8, 8), float("nan"), 0.1, 8), "lo must be a finite"),
        (
            "weight_histograms_batched",
            ([torch.randn(8, 8), torch.randn(8, 8)], [0.0, 0.0], [0.1, float("nan")], 8),
            r"weights\[1\]: delta must be > 0",
        ),
        (
            "weight_histograms_batched",
            ([torch.randn(8, 8)], [float("nan")], [0.1], 8),
            r"weights\[0\]: lo must be a finite",
        ),
        ("weight_histograms_batched", ([], [], [], 8), "at least one tensor"),
        ("weight_scores", (torch.randn(8, 8), 0.0, 0.1, 17), "bits"),
        ("weight_scores", (torch.randn(2, 8, 8), 0.0, 0.1, 8), "2D"),
        ("weight_scores", (torch.ones(8, 8, dtype=torch.int32), 0.0, 0.1, 8), "float"),
        ("weight_scores", (torch.randn(8, 8), 0.0, float("nan"), 8), "delta must be > 0"),
        ("weight_scores_batched", ([torch.randn(8, 8)], [0.0, 1.0], [0.1], 8), "one entry per tensor"),
        ("weight_scores_batched", ([], [], [], 8), "at least one tensor"),
        (
            "weight_scores_batched",
            ([torch.randn(8, 8), torch.randn(8, 8)], [0.0, float("inf")], [0.1, 0.1], 8),
            r"weights\[1\]: lo must be a finite",
        ),
        (
            "ctm_score",
            (torch.zeros(2, 1 << 16, dtype=torch.int64).index_fill_(1, torch.tensor([7]), -1),),
            "negative",
        ),
        ("plane_histograms", (torch.zeros(8, 8, dtype=torch.int8), 4), "codes must be an integer tensor"),
        ("plane_histograms", (torch.zeros(8, 8, dtype=torch.float32), 4), "codes must be an integer tensor"),
        (
            "plane_histograms",
            (torch.zeros(8, 8, dtype=torch.complex64), 4),
            "codes must be an integer tensor",
        ),
    ],
)
def test_primitive_ops_check_their_input(cpu_backend, op, args, match):
    # Called directly, a primitive op refuses what its kernels would misread (before any kernel runs).
    with pytest.raises(ValueError, match=match):
        getattr(torch.ops.qubd, op)(*args)
