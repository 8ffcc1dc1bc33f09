"""The clipped range of many tensors at once (``order_statistics_batched``, ``qubd.range``'s batched
clip): the numbers of one tensor at a time, bit for bit, on every CPU backend, and of independent
computations (a sort, ``torch.quantile``); NaN/Inf named as one tensor at a time names it."""

from __future__ import annotations

import pytest
import torch

import qubd  # noqa: F401  (declares the ops)
from qubd.ops import dispatch
from qubd.range import BATCHED_SELECT_MAX, quant_grid, quant_grids, value_range, value_ranges
from tests.test_range_pass import CASES, FLOATS, values

TRITON = dispatch.unavailable("triton", "cpu")
CLIPS = [99.9, 99.0, 90.0, 50.0, 100.0]
# Sizes around the rank arithmetic's edges, and on both sides of the batched limit.
SIZES = [1, 2, 3, 16, 17, 20, 35, 63, 256, 1000, BATCHED_SELECT_MAX, BATCHED_SELECT_MAX + 1]


def small_tensors(count: int, seed: int) -> list[torch.Tensor]:
    """Many tensors of mixed dtypes, shapes and value patterns (ties, +-0, subnormals, constants)."""
    g = torch.Generator().manual_seed(seed)
    ws = []
    for k in range(count):
        dtype = FLOATS[int(torch.randint(len(FLOATS), (1,), generator=g))]
        case = CASES[int(torch.randint(len(CASES), (1,), generator=g))]
        rows, cols = (int(x) for x in torch.randint(1, 12, (2,), generator=g))
        ws.append(values(case, rows * cols, dtype, seed=seed * 1000 + k).reshape(rows, cols))
    return ws


def bits(x: torch.Tensor) -> int:
    return int(x.reshape(1).view(torch.int64 if x.dtype == torch.float64 else torch.int32))


def quantile(w: torch.Tensor, q: float) -> float:
    """torch.quantile of the weights in their compute dtype: the independent oracle."""
    flat = w.reshape(-1).to(torch.float64 if w.dtype == torch.float64 else torch.float32)
    return torch.quantile(flat, q).item()


def assert_ranges_of_one_tensor_at_a_time(ws: list[torch.Tensor], bitwise: bool) -> None:
    for clip in CLIPS:
        batched = value_ranges(ws, clip, torch.ops.qubd.order_statistics)
        q = (1 - clip / 100) / 2
        for i, (w, (lo, hi)) in enumerate(zip(ws, batched, strict=True)):
            one_lo, one_hi = value_range(w, clip, torch.ops.qubd.order_statistics)
            assert lo.dtype == one_lo.dtype == hi.dtype
            assert (lo.item(), hi.item()) == (one_lo.item(), one_hi.item()), (clip, i, w.dtype)
            if bitwise:
                assert (bits(lo), bits(hi)) == (bits(one_lo), bits(one_hi)), (clip, i, w.dtype)
            assert (lo.item(), hi.item()) == (quantile(w, q), quantile(w, 1 - q)), (clip, i, w.dtype)


def test_batched_clip_ranges_are_those_of_one_tensor_at_a_time(cpu_backend):
    assert_ranges_of_one_tensor_at_a_time(small_tensors(300, seed=1) + [torch.randn(300, 300)], bitwise=True)


@pytest.mark.skipif(TRITON is not None, reason=f"Triton cannot run here: {TRITON}")
def test_triton_batched_clip_ranges_are_those_of_one_tensor_at_a_time(with_backend):
    with_backend("triton")
    # Its per-tensor op is its own radix select, whose zero bound may differ from kthvalue's in sign.
    assert_ranges_of_one_tensor_at_a_time(small_tensors(12, seed=6), bitwise=False)


def test_batched_grids_are_those_of_one_tensor_at_a_time(cpu_backend):
    ws = [w for w in small_tensors(200, seed=2) if w.numel() > 1]
    grids = quant_grids(ws, 99.0, 8, torch.ops.qubd.order_statistics)
    # One tensor at a time through value_range's own order_statistics call (not the batched op).
    alone = [quant_grid(*value_range(w, 99.0, torch.ops.qubd.order_statistics), 8) for w in ws]
    assert grids == alone


@pytest.mark.parametrize("n", SIZES)
def test_clip_of_every_size_equals_torch_quantile(cpu_backend, n):
    ws = [values(case, n, torch.float32, seed=n) for case in CASES]
    for clip in CLIPS:
        q = (1 - clip / 100) / 2
        for w, (lo, hi) in zip(ws, value_ranges(ws, clip, torch.ops.qubd.order_statistics), strict=True):
            assert (lo.item(), hi.item()) == (quantile(w, q), quantile(w, 1 - q)), (n, clip)


def test_order_statistics_batched_are_a_sort_of_each_tensor(cpu_backend):
    ws = small_tensors(200, seed=3) + [values("ties and signed zeros", 70_000, torch.float32, seed=4)]
    g = torch.Generator().manual_seed(5)
    ranks = [
        torch.randint(w.numel(), (int(torch.randint(0, 6, (1,), generator=g)),), generator=g).tolist()
        for w in ws
    ]
    got = torch.ops.qubd.order_statistics_batched(ws, ranks)
    assert got.dtype == torch.float64
    expected = [torch.sort(w.reshape(-1).to(torch.float64)).values[r] for w, r in zip(ws, ranks, strict=True)]
    assert got.tolist() == torch.cat(expected).tolist()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("n", [16, BATCHED_SELECT_MAX + 1])
def test_order_statistics_batched_are_nan_for_a_tensor_with_nan_or_inf(cpu_backend, bad, n):
    w = torch.randn(n)
    w[n // 3] = bad
    ws = [torch.randn(4, 4), w, torch.randn(5, 5).double()]
    got = torch.ops.qubd.order_statistics_batched(ws, [[0, 15], [0, 1, n - 1], [3]])
    assert got[[0, 1, 5]].isfinite().all()
    assert got[2:5].isnan().all()


@pytest.mark.parametrize(
    ("sizes", "bad", "named"),
    [
        ([16, 16, 16], [1, 2], "b"),  # the first of two small ones
        ([16, 70_000, 16], [1, 2], "b"),  # a large one before a small one
        ([16, 16, 70_000], [1, 2], "b"),  # a small one before a large one
        ([70_000, 16, 16], [0, 2], "a"),
    ],
)
def test_the_first_tensor_with_nan_or_inf_is_named(cpu_backend, sizes, bad, named):
    ws = [torch.randn(n) for n in sizes]
    for i in bad:
        ws[i][5] = float("nan") if i % 2 else float("inf")
    for fn in (value_ranges, lambda *args: quant_grids(args[0], args[1], 8, *args[2:])):
        with pytest.raises(ValueError, match=rf"^{named}: weights contain NaN or Inf values$"):
            fn(ws, 99.9, torch.ops.qubd.order_statistics, ["a", "b", "c"])
    with pytest.raises(ValueError, match=rf"^weights\[{bad[0]}\]: weights contain NaN or Inf values$"):
        torch.ops.qubd.qubd_batched([w.reshape(4, -1) for w in ws], 8, 99.9)


@pytest.mark.parametrize(
    ("ws", "ranks", "message"),
    [
        ([], [], "at least one tensor"),
        ([torch.randn(4)], [[0], [1]], "one list per tensor"),
        (
            [torch.randn(4), torch.randn(3)],
            [[0], [3]],
            r"weights\[1\]: ranks must lie in \[0, 2\], got \[3\]",
        ),
        ([torch.randn(4), torch.ones(3, dtype=torch.int32)], [[0], [0]], r"weights\[1\] must be float32"),
    ],
)
def test_order_statistics_batched_refuse_bad_arguments(ws, ranks, message):
    with pytest.raises(ValueError, match=message):
        torch.ops.qubd.order_statistics_batched(ws, ranks)
