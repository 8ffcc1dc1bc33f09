"""Perturbation deltas: equal to recomputing BDM / entropy after each single change, and to pybdm's
``PerturbationExperiment`` where that is exact (ignore and recursive partitions).

Tolerance: a delta is a difference of two BDM values, so the recomputed reference carries a
rounding error of order eps * BDM; deltas are compared to 1e-12 * max(1, |BDM|) absolute.
pybdm's code paths used here do not touch ``np.int`` (removed in numpy 2), so no monkeypatching.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qubd.bdm import BDM, PerturbationExperiment, perturbation_deltas, perturbation_table

pybdm = pytest.importorskip("pybdm")
from pybdm import partitions as pyparts  # noqa: E402

PARTITIONS = {
    "ignore": pyparts.PartitionIgnore,
    "recursive": pyparts.PartitionRecursive,
    "correlated": pyparts.PartitionCorrelated,
}


def recomputed(bdm, x, new, metric):
    """Delta of each single change by recomputing the measure (qubd's own, checked against pybdm
    in test_bdm_api.py, and pybdm's where given)."""
    base = getattr(bdm, metric)(x)
    out = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        if new[i] != x[i]:
            y = x.copy()
            y[i] = new[i]
            out[i] = getattr(bdm, metric)(y) - base
    return out, base


def pybdm_recomputed(ref, x, new, metric):
    """The same with pybdm as the measure."""
    base = getattr(ref, metric)(x)
    out = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        if new[i] != x[i]:
            y = x.copy()
            y[i] = new[i]
            out[i] = getattr(ref, metric)(y) - base
    return out, base


def make(ndim, k, partition, option):
    """qubd's BDM and (lazily, as its table may be slow to load) pybdm's."""
    opts = {}
    if partition == "recursive" and option is not None:
        opts["min_length"] = option
    if partition == "correlated" and option is not None:
        opts["shift"] = option
    ours = BDM(ndim, k, partition, warn_if_missing_ctm=False, **opts)
    if k > 4:
        return ours, None
    ref = pybdm.BDM(ndim=ndim, nsymbols=k, partition=PARTITIONS[partition], warn_if_missing_ctm=False, **opts)
    return ours, ref


@st.composite
def cases(draw):
    ndim, k = draw(st.sampled_from([(1, 2), (1, 4), (1, 9), (2, 2)]))
    partition = draw(st.sampled_from(list(PARTITIONS)))
    option = {"ignore": None, "recursive": draw(st.sampled_from([0, 1, 2, 3])), "correlated": None}[partition]
    if partition == "correlated":
        option = draw(st.integers(1, 4))
    if ndim == 1:
        shape = (draw(st.integers(12, 30)),)
    else:
        shape = (draw(st.integers(4, 9)), draw(st.integers(4, 9)))
    density = draw(st.sampled_from([0.05, 0.5]))  # sparse data repeat blocks (shared codes)
    return (
        ndim,
        k,
        partition,
        option,
        shape,
        density,
        draw(st.integers(0, 2**31)),
        draw(st.sampled_from(["bdm", "ent"])),
    )


@settings(max_examples=50, deadline=None)
@given(cases())
def test_deltas_equal_recomputation(case):
    ndim, k, partition, option, shape, density, seed, metric = case
    rng = np.random.default_rng(seed)
    x = np.where(rng.random(shape) < density, rng.integers(0, k, shape), 0)
    new = (x + rng.integers(1, k, shape)) % k
    ours, ref = make(ndim, k, partition, option)
    if k <= 4:
        expected, base = pybdm_recomputed(ref, x, new, metric)
    else:  # pybdm takes ~25 s to load the 9-symbol table; qubd's BDM equals pybdm's (test_bdm_api.py)
        expected, base = recomputed(ours, x, new, metric)
    got = perturbation_deltas(ours, x, new, metric=metric)
    assert isinstance(got, np.ndarray) and got.shape == x.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * max(1.0, abs(base)))


@pytest.mark.parametrize("metric", ["bdm", "ent"])
@pytest.mark.parametrize(
    "ndim,partition,shape",
    [(1, "ignore", (50,)), (1, "recursive", (41,)), (2, "ignore", (13, 10)), (2, "recursive", (12, 8))],
)
def test_matches_pybdm_perturbation_experiment(ndim, partition, shape, metric):
    """Binary flips of every element, as pybdm's ``PerturbationExperiment.run()``.

    (2D recursive only on shapes without partial blocks: see test_pybdm_recursive_quirk.)"""
    rng = np.random.default_rng(len(shape) * 100 + shape[0])
    x = rng.integers(0, 2, size=shape)
    ours, ref = make(ndim, 2, partition, 1 if partition == "recursive" else None)
    expected = pybdm.PerturbationExperiment(ref, x.copy(), metric=metric).run()
    got = PerturbationExperiment(ours, x, metric=metric).run()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)
    # idx subset with explicit values (including "no change" and -1)
    idx = np.argwhere(x)[:20]
    values = np.array([0, 1, -1, 1] * 5)[: len(idx)]
    expected = pybdm.PerturbationExperiment(ref, x.copy(), metric=metric).run(idx, values)
    got = PerturbationExperiment(ours, x, metric=metric).run(idx, values)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)


def test_keep_changes_matches_pybdm():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, size=(12, 16))
    ours, ref = make(2, 2, "ignore", None)
    idx = rng.integers(0, 12, size=(30, 2)) % np.array([12, 16])
    expected = pybdm.PerturbationExperiment(ref, x.copy()).run(idx, keep_changes=True)
    experiment = PerturbationExperiment(ours, x)
    got = experiment.run(idx, keep_changes=True)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    # The changes were kept: the data now hold every flip.
    y = x.copy()
    for i, j in idx:
        y[i, j] = 1 - y[i, j]
    assert np.array_equal(experiment.X.numpy(), y)


def test_kary_values_match_pybdm():
    """k-ary: explicit new values (pybdm draws random ones with Python's random module)."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 4, size=60)
    ours, ref = make(1, 4, "ignore", None)
    idx = np.arange(60).reshape(-1, 1)
    values = (x + rng.integers(1, 4, 60)) % 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pybdm.PerturbationExperiment(ref, x.copy()).run(idx, values)
    got = PerturbationExperiment(ours, x).run(idx, values)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_table_and_random_values():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 5, size=48)
    bdm = BDM(1, 5, warn_if_missing_ctm=False)
    table = perturbation_table(bdm, x)
    assert table.shape == (5, 48)
    for v in range(5):
        expected, _ = recomputed(bdm, x, np.full_like(x, v), "bdm")
        np.testing.assert_allclose(table[v], expected, rtol=0, atol=1e-10)
    assert np.all(table[x, np.arange(48)] == 0)
    # random other symbols: never the element's own, reproducible with a generator
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    d1 = perturbation_deltas(bdm, x, generator=g1)
    d2 = perturbation_deltas(bdm, x, generator=g2)
    assert np.array_equal(d1, d2)
    for i in range(48):  # each delta is that of some other symbol
        assert any(d1[i] == table[v, i] for v in range(5) if v != x[i])


def test_pybdm_correlated_quirk():
    """pybdm's correlated deltas use a stale counter when one element's windows share a code;
    qubd returns the recomputed change."""
    x = np.zeros(30, dtype=int)  # every window is the same block
    ours, ref = make(1, 2, "correlated", 1)
    got = perturbation_deltas(ours, x)
    expected, _ = recomputed(ours, x, 1 - x, "bdm")
    pybdm_expected, _ = pybdm_recomputed(ref, x, 1 - x, "bdm")
    np.testing.assert_allclose(got, expected, atol=1e-10)
    np.testing.assert_allclose(got, pybdm_expected, atol=1e-10)
    pybdm_run = pybdm.PerturbationExperiment(ref, x.copy()).run()
    assert np.max(np.abs(pybdm_run - expected)) > 0.1  # pybdm's own experiment is off here


def test_pybdm_recursive_quirk():
    """pybdm's experiment re-counts *every* part of the edge slice holding the element (the 2D
    recursive partition cuts it into several) against a stale counter; qubd returns the recomputed
    change."""
    rng = np.random.default_rng(8)
    x = rng.integers(0, 2, size=(11, 14))
    ours, ref = make(2, 2, "recursive", 1)
    expected, _ = pybdm_recomputed(ref, x, 1 - x, "bdm")
    np.testing.assert_allclose(perturbation_deltas(ours, x), expected, rtol=0, atol=1e-10)
    pybdm_run = pybdm.PerturbationExperiment(ref, x.copy()).run().reshape(x.shape)
    assert np.max(np.abs(pybdm_run - expected)) > 1
    np.testing.assert_allclose(pybdm_run[:8, :12], expected[:8, :12], atol=1e-10)  # full blocks agree


def test_torch_input_and_errors():
    rng = np.random.default_rng(6)
    x = rng.integers(0, 2, size=(8, 9))
    bdm = BDM(2)
    d = perturbation_deltas(bdm, torch.from_numpy(x))
    assert isinstance(d, torch.Tensor) and d.dtype == torch.float64
    np.testing.assert_array_equal(d.numpy(), perturbation_deltas(bdm, x))
    assert np.all(d[8:, :].numpy() == 0) and np.all(d[:, 8:].numpy() == 0)  # dropped edges
    with pytest.raises(ValueError, match="metric"):
        perturbation_deltas(bdm, x, metric="size")
    with pytest.raises(ValueError, match="shape"):
        perturbation_deltas(bdm, x, values=np.zeros((8, 8), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        perturbation_deltas(bdm, x, values=np.zeros((8, 9)))
    with pytest.raises(ValueError, match="below nsymbols"):
        perturbation_deltas(bdm, x, values=np.full((8, 9), 2))
    with pytest.raises(ValueError, match="holds no block"):
        perturbation_deltas(bdm, np.zeros((3, 9), dtype=int))
    with pytest.raises(ValueError, match="idx"):
        PerturbationExperiment(bdm, x).run(np.array([[9, 0]]))
    with pytest.raises(ValueError, match="set_data"):
        PerturbationExperiment(bdm).run()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(7)
    for ndim, k, partition, shape in [
        (2, 2, "ignore", (64, 61)),
        (2, 2, "recursive", (30, 29)),
        (1, 4, "correlated", (300,)),
        (1, 2, "ignore", (1000,)),
    ]:
        bdm = BDM(ndim, k, partition, warn_if_missing_ctm=False)
        x = torch.from_numpy(rng.integers(0, k, size=shape))
        new = (x + torch.from_numpy(rng.integers(1, k, size=shape))) % k
        for metric in ("bdm", "ent"):
            cpu = perturbation_deltas(bdm, x, new, metric=metric)
            gpu = perturbation_deltas(bdm, x.cuda(), new.cuda(), metric=metric)
            assert gpu.is_cuda
            torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-9)
