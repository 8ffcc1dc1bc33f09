"""pytest-benchmark: ops.qubd (8 planes) on float32 tensors, native CPU backend, against pybdm.

    pytest benchmarks/bench_qubd.py --benchmark-enable [--benchmark-json out.json]

pybdm is timed on all 8 planes of a 256x256 slice; weights/s are in each benchmark's extra_info.
"""

from __future__ import annotations

import pytest
import torch

import qubd
from tests.oracles import pybdm_bdm

SIDES = [256, 1024, 4096, 8192]


@pytest.fixture(autouse=True)
def native(monkeypatch):
    monkeypatch.setenv("QUBD_BACKEND", "native")


@pytest.mark.parametrize("clip", [None, 99.9])
@pytest.mark.parametrize("side", SIDES)
def test_qubd_native(benchmark, side, clip):
    w = torch.randn(side, side, generator=torch.Generator().manual_seed(side))
    scores = benchmark(qubd.ops.qubd, w, 8, clip)
    assert scores.shape == (8,)
    _record_rate(benchmark, w.numel())


def test_pybdm_slice(benchmark):
    codes = qubd.ops.quantize(torch.randn(256, 256), 8).numpy().astype(int)

    def all_planes():
        return [pybdm_bdm((codes >> p) & 1) for p in range(8)]

    benchmark.pedantic(all_planes, rounds=3, iterations=1)
    _record_rate(benchmark, codes.size)


def _record_rate(benchmark, weights: int) -> None:
    """Weights and weights/s in the benchmark's extra_info (no rate with --benchmark-disable: no stats)."""
    benchmark.extra_info["weights"] = weights
    if benchmark.stats is not None:
        benchmark.extra_info["weights_per_s"] = weights / benchmark.stats.stats.min
