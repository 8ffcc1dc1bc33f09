"""qubd.bdm.BDM against pybdm (the oracle) on random inputs of every supported configuration.

pybdm loads its tables through ``tests.oracles.fast_ctm_dataset`` (the same data files in the same
order, without pybdm's ~50 s Python sort of the large tables), for the whole test session.

pybdm's ``np.int`` (removed in numpy 2) is only used by ``pybdm.encoding.encode_sequence`` and
friends, which none of the pybdm code paths used here (``BDM.bdm/ent/nbdm/nent``,
``decompose``, ``lookup``) call, so no monkeypatching is needed.

Tolerance: relative 1e-12 for BDM and entropy. Normalised values lie in [0, 1] and are compared
with relative *or* absolute 1e-12 (a value that is 0 up to rounding has no meaningful relative
error).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qubd.bdm import BDM, CTMMissingWarning
from qubd.ctm.tables import load_table

pybdm = pytest.importorskip("pybdm")
from pybdm import partitions as pyparts  # noqa: E402
from pybdm.encoding import normalize_key, string_from_array  # noqa: E402

PARTITIONS = {
    "ignore": pyparts.PartitionIgnore,
    "recursive": pyparts.PartitionRecursive,
    "correlated": pyparts.PartitionCorrelated,
}
CONFIGS = [(1, 2), (1, 4), (1, 5), (1, 6), (1, 9), (2, 2)]
METHODS = ("bdm", "ent", "nbdm", "nent")


def make_pair(ndim, k, partition, option=None, **kw):
    opts = {}
    if partition == "recursive" and option is not None:
        opts["min_length"] = option
    if partition == "correlated" and option is not None:
        opts["shift"] = option
    ref = pybdm.BDM(ndim=ndim, nsymbols=k, partition=PARTITIONS[partition], warn_if_missing_ctm=False, **opts)
    ours = BDM(ndim, k, partition, warn_if_missing_ctm=False, **opts, **kw)
    return ref, ours


def pybdm_value(ref, method, x):
    """pybdm's value, or None where pybdm raises or returns 0 / nan for an undefined value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = getattr(ref, method)(x)
        except (ValueError, KeyError, ZeroDivisionError, NotImplementedError, StopIteration):
            return None
    if not math.isfinite(value):
        return None
    if method == "ent" and value == 0 and not ref.decompose_and_count(x):
        return None  # pybdm's entropy of "no blocks" is 0; qubd raises
    return float(value)


def assert_matches(ref, ours, method, x):
    expected = pybdm_value(ref, method, x)
    if expected is None:
        with pytest.raises(ValueError):
            getattr(ours, method)(x)
        return
    got = getattr(ours, method)(x)
    if method.startswith("n"):
        assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-12), (method, x.shape, got, expected)
    else:
        assert math.isclose(got, expected, rel_tol=1e-12), (method, x.shape, got, expected)


@st.composite
def cases(draw):
    ndim, k = draw(st.sampled_from(CONFIGS))
    partition = draw(st.sampled_from(list(PARTITIONS)))
    option = None
    if partition == "recursive":
        option = draw(st.sampled_from([None, 0, 1, 2, 3, 5]))
    elif partition == "correlated":
        option = draw(st.sampled_from([None, 1, 2, 3, 4, 5]))
    if ndim == 1:
        shape = (draw(st.integers(1, 90)),)
    else:
        shape = (draw(st.integers(1, 22)), draw(st.integers(1, 22)))
    seed = draw(st.integers(0, 2**32 - 1))
    # Alphabet actually used: all symbols, or a few (repeated blocks), with a skewed distribution.
    used = draw(st.integers(1, k))
    skew = draw(st.sampled_from([0.0, 1.0, 3.0]))
    return ndim, k, partition, option, shape, seed, used, skew


def draw_data(shape, k, seed, used, skew):
    rng = np.random.default_rng(seed)
    symbols = rng.choice(k, size=used, replace=False)
    p = np.exp(-skew * np.arange(used))
    return symbols[rng.choice(used, size=shape, p=p / p.sum())].astype(np.int64)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_matches_pybdm_random(case):
    ndim, k, partition, option, shape, seed, used, skew = case
    ref, ours = make_pair(ndim, k, partition, option)
    x = draw_data(shape, k, seed, used, skew)
    for method in METHODS:
        assert_matches(ref, ours, method, x)


@pytest.mark.parametrize("ndim,k", CONFIGS)
@pytest.mark.parametrize("partition", list(PARTITIONS))
def test_matches_pybdm_every_configuration(ndim, k, partition):
    """Every (ndim, nsymbols, partition) with shapes that leave partial blocks."""
    rng = np.random.default_rng(1000 * ndim + 10 * k + len(partition))
    shapes = [(12,), (37,), (144,), (301,)] if ndim == 1 else [(4, 4), (13, 10), (17, 23), (32, 31)]
    options = {"ignore": [None], "recursive": [0, 1, 2, 3], "correlated": [1, 2, 5]}[partition]
    for shape in shapes:
        for option in options:
            ref, ours = make_pair(ndim, k, partition, option)
            x = rng.integers(0, k, size=shape)
            for method in METHODS:
                assert_matches(ref, ours, method, x)


@pytest.mark.parametrize("density", [0.1, 0.5, 0.9])
def test_2d_fast_path_large(density):
    """The 2D binary 4x4 fast path (block-code histogram) on larger matrices."""
    rng = np.random.default_rng(int(density * 10))
    ref, ours = make_pair(2, 2, "ignore")
    for shape in [(64, 64), (129, 77), (256, 255)]:
        x = (rng.random(shape) < density).astype(np.int64)
        for method in METHODS:
            assert_matches(ref, ours, method, x)


def test_fast_path_equals_generic_path():
    """Correlated with shift 4 visits the same 4x4 blocks as ignore, through the generic pipeline."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2, size=(41, 38))
    fast, generic = BDM(2), BDM(2, partition="correlated", shift=4)
    assert fast.bdm(x) == pytest.approx(generic.bdm(x), rel=1e-13)
    assert fast.ent(x) == pytest.approx(generic.ent(x), rel=1e-13)


def test_custom_block_shape_matches_pybdm():
    """pybdm's ``shape`` option (a smaller square block of the same table)."""
    rng = np.random.default_rng(3)
    # Small blocks on larger data: more parts than table entries, so pybdm's max-BDM list cycles.
    for ndim, shape, data_shape in [
        (2, (3, 3), (14, 10)),
        (2, (2, 2), (7, 9)),
        (1, (8,), (70,)),
        (2, (2, 2), (21, 22)),
        (1, (2,), (53,)),
        (1, (3,), (61,)),
    ]:
        for partition in PARTITIONS:
            ref = pybdm.BDM(ndim=ndim, shape=shape, partition=PARTITIONS[partition])
            ours = BDM(ndim, partition=partition, shape=shape)
            x = rng.integers(0, 2, size=data_shape)
            for method in METHODS:
                assert_matches(ref, ours, method, x)


@pytest.mark.parametrize("partition", list(PARTITIONS))
@pytest.mark.parametrize("ndim", [1, 2])
def test_decompose_gives_pybdm_blocks(ndim, partition):
    """The decomposition stage yields pybdm's multiset of (shape, key) blocks."""
    rng = np.random.default_rng(11)
    shape = (59,) if ndim == 1 else (15, 11)
    option = {"ignore": None, "recursive": 1, "correlated": 3}[partition]
    ref, ours = make_pair(ndim, 2, partition, option)
    x = rng.integers(0, 2, size=shape)
    expected = sorted((b.shape, string_from_array(b)) for b in ref.decompose(x))
    got = sorted(
        (group.shape, string_from_array(block.reshape(group.shape)))
        for group in ours.decompose(x)
        for block in group.blocks.numpy()
    )
    assert got == expected


def _missing_key_sequence(k):
    """A length-12 sequence whose normalised key is absent from ctm-b{k}-d12 (brute force search)."""
    table = load_table(f"ctm-b{k}-d12")
    present = set(table.codes[(12,)].tolist())
    rng = np.random.default_rng(k)
    for _ in range(100000):
        seq = rng.integers(0, k, 12)
        key = normalize_key(string_from_array(seq))
        if int(key, k) not in present:
            return seq
    raise AssertionError("no missing key found")


@pytest.mark.parametrize("k", [4, 5, 6, 9])
def test_missing_ctm_parts(k):
    """Blocks absent from the CTM table: pybdm's stand-in (max + 1), warning, and the options."""
    seq = _missing_key_sequence(k)
    rng = np.random.default_rng(k + 100)
    x = np.concatenate([seq, rng.integers(0, k, 12 * 20), seq])
    ref = pybdm.BDM(ndim=1, nsymbols=k)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        expected = ref.bdm(x)
    assert any("does not contain" in str(w.message) for w in caught)  # pybdm warned too
    with pytest.warns(CTMMissingWarning, match="does not contain"):
        assert BDM(1, k).bdm(x) == pytest.approx(expected, rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when disabled
        assert BDM(1, k, warn_if_missing_ctm=False).bdm(x) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="does not contain"):
        BDM(1, k, missing_ctm="error").bdm(x)
    # "mean": pybdm's documented rule; differs from max+1 by (max + 1 - mean) per missing block.
    table = load_table(f"ctm-b{k}-d12")
    values = table.values[(12,)]
    mean = BDM(1, k, warn_if_missing_ctm=False, missing_ctm="mean").bdm(x)
    missing = BDM(1, k, warn_if_missing_ctm=False).count(BDM(1, k).decompose(x))
    ctm, found = BDM(1, k, warn_if_missing_ctm=False).ctm.values((12,), missing.codes[(12,)])
    n_missing_distinct = int((~found).sum())
    assert n_missing_distinct >= 1
    assert mean == pytest.approx(
        expected - n_missing_distinct * (values.max() + 1 - values.mean()), rel=1e-12
    )


def test_torch_numpy_bool_inputs_agree():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, size=(23, 30))
    bdm = BDM(2)
    expected = bdm.bdm(x)
    assert bdm.bdm(torch.from_numpy(x)) == expected
    assert bdm.bdm(x.astype(bool)) == expected
    assert bdm.bdm(torch.from_numpy(x).bool()) == expected
    assert bdm.bdm(x.astype(np.uint8)) == expected
    assert bdm.bdm(x.tolist()) == expected
    y = rng.integers(0, 9, size=200)
    assert BDM(1, 9, warn_if_missing_ctm=False).bdm(torch.from_numpy(y).to(torch.int16)) == BDM(
        1, 9, warn_if_missing_ctm=False
    ).bdm(y)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(6)
    for ndim, k, partition, shape in [
        (2, 2, "ignore", (64, 61)),
        (2, 2, "recursive", (30, 29)),
        (1, 4, "correlated", (500,)),
        (1, 9, "ignore", (600,)),
    ]:
        bdm = BDM(ndim, k, partition, warn_if_missing_ctm=False)
        x = torch.from_numpy(rng.integers(0, k, size=shape))
        for method in ("bdm", "ent"):
            assert getattr(bdm, method)(x.cuda()) == pytest.approx(getattr(bdm, method)(x), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"ndim": 3}, "no CTM table"),
        ({"ndim": 2, "nsymbols": 4}, "no CTM table"),
        ({"ndim": 1, "nsymbols": 3}, "no CTM table"),
        ({"ndim": 1, "partition": "sliding"}, "partition must be"),
        ({"ndim": 1, "partition": "correlated", "shift": 0}, "shift"),
        ({"ndim": 1, "partition": "correlated", "shift": 1.5}, "shift"),
        ({"ndim": 1, "shift": 2}, "correlated partition only"),
        ({"ndim": 1, "min_length": 2}, "recursive partition only"),
        ({"ndim": 1, "partition": "recursive", "min_length": -1}, "min_length"),
        ({"ndim": 2, "shape": (4, 3)}, "square"),
        ({"ndim": 1, "shape": (13,)}, "no blocks of shape"),
        ({"ndim": 2, "shape": (5, 5)}, "no blocks of shape"),
        ({"ndim": 1, "missing_ctm": "zero"}, "missing_ctm"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BDM(**kwargs)


@pytest.mark.parametrize(
    "ndim,k,x,match",
    [
        (2, 2, np.zeros((8,), dtype=int), "must be 2D"),
        (1, 2, np.zeros((4, 12), dtype=int), "must be 1D"),
        (2, 2, np.full((8, 8), 2), "symbols 0..1"),
        (1, 4, np.arange(24) % 5, "symbols 0..3"),
        (1, 2, -np.ones(24, dtype=int), "symbols 0..1"),
        (2, 2, np.zeros((8, 8)), "integer"),
        (2, 2, torch.zeros(8, 8), "integer"),
        (1, 2, np.zeros((0,), dtype=int), "empty"),
        (2, 2, np.zeros((0, 8), dtype=int), "empty"),
        (1, 2, np.zeros(11, dtype=int), "holds no block"),
        (2, 2, np.zeros((3, 50), dtype=int), "holds no block"),
        (1, 2, np.array(["0"] * 12), "integer"),
    ],
)
def test_bad_data(ndim, k, x, match):
    bdm = BDM(ndim, k)
    for method in METHODS:
        with pytest.raises(ValueError, match=match):
            getattr(bdm, method)(x)


def test_where_pybdm_raises_or_returns_nonsense():
    """Documented differences: qubd raises ValueError where pybdm raises another error or returns 0/nan."""
    x = np.zeros(11, dtype=int)
    ref = pybdm.BDM(ndim=1)
    with pytest.raises(ValueError, match="Computed BDM is 0"):
        ref.bdm(x)  # raise_if_zero
    assert ref.ent(x) == 0  # pybdm: entropy of no blocks
    with pytest.raises(ValueError, match="holds no block"):
        BDM(1).ent(x)
    # Normalised values on the correlated partition.
    ref = pybdm.BDM(ndim=1, partition=pyparts.PartitionCorrelated)
    with pytest.raises(NotImplementedError):
        ref.nbdm(np.zeros(30, dtype=int))
    with pytest.raises(ValueError, match="correlated"):
        BDM(1, partition="correlated").nbdm(np.zeros(30, dtype=int))
    # Recursive 2D normalisation over non-square edge slices.
    ref = pybdm.BDM(ndim=2, partition=pyparts.PartitionRecursive)
    with pytest.raises((KeyError, StopIteration)):  # its table lookup of shape (4, 2) fails
        ref.nbdm(np.zeros((6, 6), dtype=int))
    with pytest.raises(ValueError, match="lacks"):
        BDM(2, partition="recursive").nbdm(np.zeros((6, 6), dtype=int))
    # Coinciding bounds: a single block gives max == min entropy.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(pybdm.BDM(ndim=1).nent(np.zeros(12, dtype=int)))
    with pytest.raises(ValueError, match="bounds coincide"):
        BDM(1).nent(np.zeros(12, dtype=int))
    # Non-integer data: pybdm TypeError, qubd ValueError.
    with pytest.raises(TypeError):
        pybdm.BDM(ndim=1).bdm(np.zeros(12))
    with pytest.raises(ValueError):
        BDM(1).bdm(np.zeros(12))


def test_stages_compose():
    """decompose -> count -> lookup -> aggregate gives bdm()."""
    rng = np.random.default_rng(9)
    x = rng.integers(0, 4, size=500)
    bdm = BDM(1, 4, "recursive", min_length=1, warn_if_missing_ctm=False)
    counts = bdm.count(bdm.decompose(x))
    assert counts.total == 500 // 12 + 1
    ctm = bdm.lookup(counts)
    manual = sum(float((ctm[s] + torch.log2(counts.counts[s].double())).sum()) for s in ctm)
    assert manual == pytest.approx(bdm.bdm(x), rel=1e-14)
    assert "recursive" in repr(bdm)


native = pytest.importorskip("qubd.bdm.native")
needs_native = pytest.mark.skipif(
    not native.available(torch.empty(0)), reason="the native backend (qubd._C) is not built"
)


@needs_native
@settings(max_examples=150, deadline=None)
@given(
    k=st.sampled_from([4, 5, 6, 9]),
    length=st.integers(1, 12),
    n=st.integers(0, 600),
    used=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
)
def test_native_kary_kernels_equal_torch(k, length, n, used, seed):
    """Each native kernel of the k-ary fast path against the torch reference it replaces."""
    from qubd.bdm.blocks import decode_codes, encode_blocks, normalize_digits

    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.choice(k, size=min(used, k), replace=False)[rng.integers(0, min(used, k), n)])
    x = x.to(torch.uint8)
    codes, counts = native.block_counts(x, length, k)
    blocks = x[: n // length * length].reshape(-1, length)
    expected_codes, expected_counts = torch.unique(encode_blocks(blocks, k), return_counts=True)
    assert torch.equal(codes, expected_codes) and torch.equal(counts, expected_counts)
    normalised = native.normalise_codes(codes, length, k)
    assert torch.equal(normalised, normalize_digits(decode_codes(codes, length, k), k))
    # Looked up: all normalised codes of this length, beside the blocks of x (absent ones included).
    queries = torch.cat([normalised, torch.from_numpy(load_table(f"ctm-b{k}-d12").codes[(length,)])])
    values = native.ctm_values(native.ctm_hash(f"ctm-b{k}-d12", (length,)), queries)
    expected, found = load_table(f"ctm-b{k}-d12").lookup((length,), queries.numpy())
    assert np.array_equal(~torch.isnan(values).numpy(), found)
    assert np.array_equal(values.numpy()[found], expected[found])


@needs_native
@pytest.mark.parametrize("k", [4, 5, 6, 9])
def test_native_kary_bdm_equals_torch_path(k, with_backend):
    """BDM and entropy of k-ary 1D data through the native fast path and the torch path: bit-equal."""
    x = np.random.default_rng(k).integers(0, k, size=100_003)
    bdm = BDM(1, k, warn_if_missing_ctm=False)
    fast = bdm.bdm(x), bdm.ent(x), bdm.nbdm(x)
    with_backend("torch")
    assert not native.available(torch.empty(0))
    assert (bdm.bdm(x), bdm.ent(x), bdm.nbdm(x)) == fast


@pytest.mark.parametrize("partition", list(PARTITIONS))
def test_partition_classes_as_in_pybdm(partition):
    """``partition=`` takes qubd's partition class of pybdm's name, as pybdm takes its own."""
    from qubd import bdm as qbdm

    cls = getattr(qbdm, PARTITIONS[partition].__name__)
    x = np.random.default_rng(12).integers(0, 2, size=(19, 22))
    option = {"ignore": {}, "recursive": {"min_length": 1}, "correlated": {"shift": 3}}[partition]
    ours = BDM(2, partition=cls, **option)
    assert ours.partition.name == partition and isinstance(ours.partition, cls)
    ref = pybdm.BDM(ndim=2, partition=PARTITIONS[partition], **option)
    for method in METHODS:
        assert_matches(ref, ours, method, x)


@pytest.mark.parametrize("k", [4, 5, 6, 9])
def test_normalised_codes_equal_pybdm_normalize_key(k):
    """Both routes of symbol normalisation (by table where :func:`normalises_by_table`, by the symbols
    otherwise) give pybdm's ``normalize_key`` for every block length of the table."""
    from qubd.bdm.blocks import decode_codes, normalize_codes, normalize_digits

    rng = np.random.default_rng(k)
    for length in range(1, 13):
        codes = torch.from_numpy(rng.integers(0, k**length, size=300))
        blocks = decode_codes(codes, length, k)
        expected = [int(normalize_key(string_from_array(b)), k) for b in blocks.numpy()]
        assert normalize_codes(codes, length, k).tolist() == expected
        assert normalize_digits(blocks, k).tolist() == expected
