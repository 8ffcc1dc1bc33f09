"""The range pass (``value_bounds``: min, max and the finite check in one read) and the radix order
statistics, on every CPU backend and every instruction set this CPU runs, against independent
computations: a sort of the values in float64, and ``torch.kthvalue``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import qubd
from qubd import _C
from qubd.backends import native
from qubd.ops import dispatch

FLOATS = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
ISAS = _C.supported_isas()
# Past 4 * 2**16 values the native range pass splits the work over threads.
SIZES = [1, 2, 5, 17, 1000, 300_001]
# The smallest positive subnormal of each dtype.
TINY = {
    torch.float32: 1e-45,
    torch.bfloat16: 9.2e-41,
    torch.float16: 6e-8,
    torch.float64: 5e-324,
}


@pytest.fixture(autouse=True)
def best_isa_afterwards():
    """Every test here ends on the best instruction set, even one that failed half-way through a loop
    over them."""
    yield
    _C.set_isa(ISAS[-1])


def each_backend_and_isa():
    """Runs the loop body on the torch reference and on the native kernels with each instruction set."""
    try:
        with dispatch.using(None):
            for backend in dispatch.available_backends("cpu"):
                dispatch.use(backend)
                for isa in ISAS if backend == "native" else ["-"]:
                    if backend == "native":
                        _C.set_isa(isa)
                    yield backend, isa
    finally:  # a failed assertion must not leave the next tests on a lower instruction set
        _C.set_isa(ISAS[-1])


def values(case: str, n: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, generator=g, dtype=torch.float64)
    if case == "ties and signed zeros":  # few distinct values, -0.0 and +0.0 among them
        w = (w * 2).round() * torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    elif case == "subnormals":
        w = (w * 8).round() * TINY[dtype]
    elif case == "all equal":
        w = torch.full((n,), -2.5, dtype=torch.float64)
    elif case == "wide":
        w = w * {torch.float16: 5e3, torch.bfloat16: 1e37}.get(dtype, 1e37)
    return w.to(dtype)


CASES = ["normal", "ties and signed zeros", "subnormals", "all equal", "wide"]


def bits(x: torch.Tensor) -> list[int]:
    return x.view(torch.int64).tolist()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", CASES)
def test_value_bounds_are_the_ends_of_a_sort(dtype, case):
    for n in SIZES:
        w = values(case, n, dtype, seed=n)
        ordered = w.to(torch.float64).sort().values
        # The bit patterns: zeros come back as +0.0 from every backend.
        expected = bits(torch.stack([ordered[0], ordered[-1]]) + 0.0)
        for backend, isa in each_backend_and_isa():
            assert bits(torch.ops.qubd.value_bounds([w])[0]) == expected, (n, backend, isa)


def test_value_bounds_of_a_batch_are_those_of_each_tensor(cpu_backend):
    ws = [
        values(case, 999, dtype, seed=i)
        for i, (case, dtype) in enumerate(zip(CASES, [*FLOATS, torch.float32], strict=True))
    ]
    ws.append(torch.randn(6, 4, 5).permute(2, 0, 1))  # not contiguous
    batch = torch.ops.qubd.value_bounds(ws)
    for i, w in enumerate(ws):
        assert bits(batch[i]) == bits(torch.ops.qubd.value_bounds([w])[0]), i
        assert batch[i].tolist() == [w.min().item(), w.max().item()], i


def _non_finite(dtype: torch.dtype, name: str) -> torch.Tensor:
    one = torch.tensor([float(name.removeprefix("-"))], dtype=dtype)
    if name == "-nan":  # a NaN with the sign bit set sorts below -Inf among the keys
        return -one.abs()
    return -one if name.startswith("-") else one


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("bad", ["nan", "-nan", "inf", "-inf"])
def test_value_bounds_are_not_finite_when_a_value_is_not(dtype, bad):
    n = 300_001
    for at in (0, 77, 1 << 18, n - 1):  # first, inside the first chunk, another thread's, last
        w = torch.randn(n, generator=torch.Generator().manual_seed(at)).to(dtype)
        w[at] = _non_finite(dtype, bad)[0]
        for backend, isa in each_backend_and_isa():
            assert not torch.ops.qubd.value_bounds([w]).isfinite().all(), (at, backend, isa)
    matrix = torch.ones(20, 20, dtype=dtype)
    matrix[3, 7] = _non_finite(dtype, bad)[0]
    with pytest.raises(ValueError, match=r"^weights\[1\]: weights contain NaN or Inf values$"):
        qubd.ops.qubd_batched([torch.ones(4, 4, dtype=dtype), matrix])


def test_value_bounds_refuse_what_is_not_float_weights():
    with pytest.raises(ValueError, match="at least one"):
        torch.ops.qubd.value_bounds([])
    with pytest.raises(ValueError, match=r"weights\[1\] must be float32"):
        torch.ops.qubd.value_bounds([torch.ones(3), torch.ones(3, dtype=torch.int32)])
    with pytest.raises(ValueError, match=r"weights\[0\] is empty"):
        torch.ops.qubd.value_bounds([torch.ones(0)])


def _sorted_at(w: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    # For large tensors with ties or in order: torch.kthvalue's selection can go quadratic there.
    values = w.to(torch.float64).sort().values[ranks]
    return values.to(torch.float64 if w.dtype == torch.float64 else torch.float32)


def _kthvalues(w: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    flat = w.to(torch.float64)  # exact for every stored dtype; kthvalue is torch's selection, not a sort
    values = torch.stack([torch.kthvalue(flat, r + 1).values for r in ranks])
    return values.to(torch.float64 if w.dtype == torch.float64 else torch.float32)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", CASES)
def test_order_statistics_equal_kthvalue_on_every_isa(dtype, case):
    for n in SIZES:
        w = values(case, n, dtype, seed=n + 1)
        # Clipping's ranks (few wanted buckets: 16-bit digits) and many ranks (narrower digits, gather).
        for ranks in ([0, n // 2000, n - 1 - n // 2000, n - 1], sorted({n * k // 9 for k in range(9)})):
            expected = _kthvalues(w, ranks)
            for backend, isa in each_backend_and_isa():
                got = torch.ops.qubd.order_statistics(w, ranks)
                assert got.tolist() == expected.tolist(), (n, ranks, backend, isa)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_order_statistics_of_large_buckets(dtype):
    # Buckets past the gather limit (2**21 keys) with more than 4 of them wanted: narrow digits
    # until they are small enough to gather.
    n = (1 << 21) * 3 + 5
    w = (torch.randn(n, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 1.0).round()
    w = (w + torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(6)) * 1e-3).to(dtype)
    ranks = [0, 1, n // 7, n // 3, n // 2, n // 2 + 1, 2 * n // 3, n - 1]
    expected = _sorted_at(w, ranks)
    for isa in ISAS:
        _C.set_isa(isa)
        assert native.order_statistics(w, ranks).tolist() == expected.tolist(), isa
    _C.set_isa(ISAS[-1])


def _clip_ranks(n: int, clip: float = 99.9) -> list[int]:
    q = (1 - clip / 100) / 2
    return sorted(
        {int(q * (n - 1)), int(q * (n - 1)) + 1, int((1 - q) * (n - 1)), int((1 - q) * (n - 1)) + 1}
    )


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("layout", ["random", "sorted", "unlike the sample"])
def test_order_statistics_of_clipping_on_large_tensors(dtype, layout):
    # Past 2**20 values the native kernel first tries the ranks' intervals from a sample; the
    # counts prove them, or it falls back to radix selection. Either way: torch's selection.
    n = (1 << 20) + 4099
    w = torch.randn(n, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    if layout == "sorted":
        w = w.sort(descending=True).values
    elif layout == "unlike the sample":  # what the evenly spaced runs of 16 read is all zeros
        stride = n // ((1 << 15) // 16)
        for i in range(16):
            w[i::stride] = 0.0
    w = w.to(dtype)
    for ranks in (_clip_ranks(n), _clip_ranks(n, 99.0), [0, n - 1], [n // 3]):
        expected = _sorted_at(w, ranks)
        for isa in ISAS:
            _C.set_isa(isa)
            assert native.order_statistics(w, ranks).tolist() == expected.tolist(), (ranks, isa)
    _C.set_isa(ISAS[-1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ["tails of equal values", "two values", "ties unlike the sample"])
def test_order_statistics_fall_back_exactly_where_the_sample_cannot_answer(dtype, case):
    # The sample's intervals gather at most n/64 keys each (here 2**16), all threads together;
    # past that, or where the sample is unlike the data, radix selection answers. Either way: the
    # sorted values, from numpy, on one thread and on two.
    n = (1 << 22) + 3
    w = torch.randn(n, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    if case == "tails of equal values":  # ~3% of n at each end (~1.5% per thread of two) is one value
        w = torch.where(w < -1.88, -4.0, torch.where(w > 1.88, 4.0, w))
    elif case == "two values":
        w = (w > 0.5).double()
    else:  # ties everywhere, and what the evenly spaced runs of 16 read is all 7.0
        w = (w * 4).round()
        stride = n // ((1 << 15) // 16)
        for i in range(16):
            w[i::stride] = 7.0
    w = w.to(dtype)
    ordered = np.sort(w.double().numpy())
    threads = _C.get_num_threads()
    try:
        for ranks in (_clip_ranks(n), _clip_ranks(n, 90.0), [n // 2]):
            for isa in ISAS:
                _C.set_isa(isa)
                for count in (1, 2):
                    _C.set_num_threads(count)
                    assert native.order_statistics(w, ranks).tolist() == ordered[ranks].tolist(), (
                        ranks,
                        isa,
                        count,
                    )
    finally:
        _C.set_num_threads(threads)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("bad", ["nan", "-nan", "inf", "-inf"])
def test_order_statistics_of_large_tensors_refuse_non_finite(dtype, bad):
    n = (1 << 20) + 5
    for at in (3, n // 2 + 1, n - 1):
        w = torch.randn(n, generator=torch.Generator().manual_seed(at)).to(dtype)
        w[at] = _non_finite(dtype, bad)[0]
        with pytest.raises(ValueError, match="^weights contain NaN or Inf values$"):
            native.order_statistics(w, _clip_ranks(n))
