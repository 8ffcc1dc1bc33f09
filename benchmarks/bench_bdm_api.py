"""qubd.bdm against pybdm on inputs of 1M elements (CPU).

Run: ``pytest benchmarks/bench_bdm_api.py --benchmark-enable --benchmark-group-by=param:case``
(add ``-k qubd`` to skip the slow pybdm runs). pybdm runs once per case (it takes seconds);
qubd is timed over many rounds. The pybdm perturbation experiment is timed on the first
``PYBDM_PERTURB`` elements only (it takes ~0.1 ms per element); compare per element.

torch runs with ``QUBD_BENCH_THREADS`` threads (default 1: pybdm uses one core, and on a shared
2-core machine torch's thread pool makes small ops' timings erratic).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from qubd.bdm import BDM, kary_qubd, perturbation_deltas

pybdm = pytest.importorskip("pybdm")
from pybdm import partitions as pyparts  # noqa: E402

PYBDM_PERTURB = 5000


@pytest.fixture(autouse=True)
def torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("QUBD_BENCH_THREADS", "1")))
    yield
    torch.set_num_threads(before)


PARTITIONS = {
    "ignore": pyparts.PartitionIgnore,
    "recursive": pyparts.PartitionRecursive,
    "correlated": pyparts.PartitionCorrelated,
}
# case: (ndim, nsymbols, partition, data shape, method)
CASES = {
    "1d-b2-ignore-bdm": (1, 2, "ignore", (1_000_000,), "bdm"),
    "1d-b2-ignore-ent": (1, 2, "ignore", (1_000_000,), "ent"),
    "1d-b4-ignore-bdm": (1, 4, "ignore", (1_000_000,), "bdm"),
    "1d-b4-ignore-ent": (1, 4, "ignore", (1_000_000,), "ent"),
    "1d-b5-ignore-bdm": (1, 5, "ignore", (1_000_000,), "bdm"),
    "1d-b6-ignore-bdm": (1, 6, "ignore", (1_000_000,), "bdm"),
    "1d-b9-ignore-bdm": (1, 9, "ignore", (1_000_000,), "bdm"),
    "1d-b9-ignore-ent": (1, 9, "ignore", (1_000_000,), "ent"),
    "1d-b2-recursive-bdm": (1, 2, "recursive", (1_000_003,), "bdm"),
    "1d-b2-correlated-bdm": (1, 2, "correlated", (1_000_000,), "bdm"),
    "2d-b2-ignore-bdm": (2, 2, "ignore", (1000, 1000), "bdm"),
    "2d-b2-ignore-nbdm": (2, 2, "ignore", (1000, 1000), "nbdm"),
    "2d-b2-recursive-bdm": (2, 2, "recursive", (1001, 999), "bdm"),
    "2d-b2-correlated-bdm": (2, 2, "correlated", (1000, 1000), "bdm"),
}


def data(ndim, k, shape):
    return np.random.default_rng(0).integers(0, k, size=shape)


@pytest.mark.parametrize("case", list(CASES))
def test_qubd(benchmark, case):
    ndim, k, partition, shape, method = CASES[case]
    bdm = BDM(ndim, k, partition, warn_if_missing_ctm=False)
    x = data(ndim, k, shape)
    getattr(bdm, method)(x)  # warm-up: table loading
    benchmark(getattr(bdm, method), x)


@pytest.mark.parametrize("case", list(CASES))
def test_pybdm(benchmark, case):
    ndim, k, partition, shape, method = CASES[case]
    ref = pybdm.BDM(ndim=ndim, nsymbols=k, partition=PARTITIONS[partition], warn_if_missing_ctm=False)
    x = data(ndim, k, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        benchmark.pedantic(getattr(ref, method), args=(x,), rounds=1, iterations=1)


@pytest.mark.parametrize("case", ["perturb-2d-b2-ignore", "perturb-1d-b2-ignore"])
def test_qubd_perturbation(benchmark, case):
    x = data(2, 2, (1000, 1000)) if "2d" in case else data(1, 2, (1_000_000,))
    bdm = BDM(x.ndim)
    perturbation_deltas(bdm, x)
    benchmark(perturbation_deltas, bdm, x)


@pytest.mark.parametrize("case", ["perturb-2d-b2-ignore", "perturb-1d-b2-ignore"])
def test_pybdm_perturbation(benchmark, case):
    """pybdm's experiment on the first PYBDM_PERTURB elements of the same 1M-element data."""
    x = data(2, 2, (1000, 1000)) if "2d" in case else data(1, 2, (1_000_000,))
    experiment = pybdm.PerturbationExperiment(pybdm.BDM(ndim=x.ndim), x.copy())
    idx = np.argwhere(np.ones_like(x))[:PYBDM_PERTURB]
    benchmark.pedantic(experiment.run, args=(idx,), rounds=1, iterations=1)


def test_qubd_kary(benchmark):
    """k-ary QuBD of a 1000 x 1000 weight matrix (quantize + ctm-b4-d12 BDM + bit-plane sum)."""
    w = torch.randn(1000, 1000, generator=torch.Generator().manual_seed(0))
    kary_qubd(w)
    benchmark(kary_qubd, w)
