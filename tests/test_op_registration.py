"""Every qubd op passes ``torch.library.opcheck``: its schema, its fake against the real kernel, its
autograd registration and (for the primitives) tracing with dynamic shapes, on every CPU backend."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import qubd  # noqa: F401  (declares the ops)
from qubd.ops.library import COMPOSITES, PRIMITIVE_OPS


def _weights(rows: int, cols: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _cases() -> dict[str, list[tuple]]:
    codes = torch.randint(0, 16, (8, 13), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    counts = torch.randint(0, 5, (3, 1 << 16), generator=torch.Generator().manual_seed(2))
    w = _weights(8, 12, 0)
    return {
        "value_bounds": [([w, w.to(torch.bfloat16).reshape(-1), w.double()],)],
        "order_statistics": [(w, [0, 5, 95]), (w.double(), [17])],
        "order_statistics_batched": [
            ([w, w.to(torch.bfloat16).reshape(-1), w.double()], [[0, 5, 95], [], [17, 17]])
        ],
        "radix_digit_counts": [(w, [0], 0, 16), (w.double(), [3, 49087, 3], 16, 5), (w[:0].half(), [], 0, 1)],
        "quantize_to_grid": [(w, -3.0, 0.1, 6), (w.to(torch.bfloat16), -3.0, 0.01, 11)],
        "plane_histograms": [(codes, 4), (codes.bool(), 1)],
        "weight_histograms": [(w, -3.0, 0.1, 6), (w.double(), -3.0, float("inf"), 3)],
        "weight_histograms_batched": [([w, _weights(4, 4, 1)], [-3.0, -2.0], [0.1, 0.2], 6)],
        "ctm_score": [(counts,)],
        "weight_scores": [(w, -3.0, 0.1, 6), (w.double(), -3.0, float("inf"), 3)],
        "weight_scores_batched": [([w, _weights(4, 4, 1)], [-3.0, -2.0], [0.1, 0.2], 6)],
        "weight_scores_and_ones_batched": [([w, _weights(5, 7, 1)], [-3.0, -2.0], [0.1, 0.2], 6)],
        "quantize": [(w, 6, 99.0), (w.half(), 3, None)],
        "bdm": [(torch.randint(0, 2, (8, 9), generator=torch.Generator().manual_seed(3)),)],
        "qubd": [(w, 6, None), (_weights(6, 20, 4).reshape(6, 4, 5), 8, 99.9)],
        "qubd_batched": [([w, _weights(4, 4, 1)], 6, 99.0)],
    }


CASES = [(op, args) for op, cases in _cases().items() for args in cases]


def test_every_op_has_a_case():
    assert {op for op, _ in CASES} == set(PRIMITIVE_OPS) | set(COMPOSITES)


# The composites compute the quantisation grid on the host from the data (lo and delta are Python
# floats of the op's own inputs), so they cannot be traced into a graph: no aot_dispatch test for them.
COMPOSITE_TESTS = ("test_schema", "test_autograd_registration", "test_faketensor")
PRIMITIVE_TESTS = (*COMPOSITE_TESTS, "test_aot_dispatch_dynamic")


@pytest.mark.parametrize(("op", "args"), CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_opcheck(cpu_backend, op, args):
    test_utils = COMPOSITE_TESTS if op in COMPOSITES else PRIMITIVE_TESTS
    result = torch.library.opcheck(getattr(torch.ops.qubd, op), args, test_utils=test_utils)
    assert set(result) == set(test_utils)
    assert all(outcome == "SUCCESS" for outcome in result.values()), result


@pytest.mark.parametrize(
    ("op", "args", "match"),
    [
        ("quantize_to_grid", (torch.randn(8, 8), 0.0, 0.0, 8), "delta"),
        ("weight_histograms", (torch.randn(8, 8), float("nan"), 0.1, 8), "lo"),
        ("weight_histograms", (torch.randn(2, 8, 8), 0.0, 0.1, 8), "2D"),
        ("ctm_score", (torch.zeros(2, 10, dtype=torch.int64),), "65536"),
        ("plane_histograms", (torch.zeros(8, 8, dtype=torch.int8), 4), "codes must be an integer"),
    ],
)
def test_fakes_check_like_the_kernels(op, args, match):
    # Under torch.compile the fake stands in for the kernel: it refuses the same arguments.
    with FakeTensorMode(allow_non_fake_inputs=True), pytest.raises(ValueError, match=match):
        getattr(torch.ops.qubd, op)(*args)
