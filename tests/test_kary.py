"""k-ary QuBD (2-bit codes, ctm-b4-d12) against pybdm on the same code sequence, beside the
bit-plane QuBD sum. pybdm's code paths used here do not touch ``np.int`` (no monkeypatching)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import qubd.ops
from qubd.bdm import BDM, KaryQuBD, kary_qubd
from qubd.ctm.tables import load_table

pybdm = pytest.importorskip("pybdm")
from pybdm.encoding import normalize_key, string_from_array  # noqa: E402


@pytest.fixture(scope="module")
def ref():
    return pybdm.BDM(ndim=1, nsymbols=4, warn_if_missing_ctm=False)


def codes_matrix(w, clip=None):
    return qubd.ops.quantize(w, 2, clip).flatten(1).numpy().astype(np.int64)


def pybdm_missing(blocks):
    present = set(load_table("ctm-b4-d12").codes[(12,)].tolist())
    return sum(int(normalize_key(string_from_array(b)), 4) not in present for b in blocks)


WEIGHTS = [
    ("linear", lambda g: torch.randn(48, 37, generator=g)),
    ("conv", lambda g: torch.randn(16, 3, 5, 5, generator=g)),
    (
        "structured",
        lambda g: torch.linspace(-1, 1, 40 * 24).reshape(40, 24) + 0.01 * torch.randn(40, 24, generator=g),
    ),
    ("heavy-tailed", lambda g: torch.distributions.StudentT(2.0).sample((30, 41))),
]


@pytest.mark.parametrize("clip", [None, 99.0])
@pytest.mark.parametrize("name,make", WEIGHTS)
def test_kary_matches_pybdm_on_flattened_codes(name, make, clip, ref):
    g = torch.Generator().manual_seed(len(name))
    torch.manual_seed(len(name))
    w = make(g)
    result = kary_qubd(w, clip)
    assert isinstance(result, KaryQuBD)
    q = codes_matrix(w, clip)
    seq = q.reshape(-1)
    assert result.kary == pytest.approx(ref.bdm(seq), rel=1e-12)
    assert result.blocks == len(seq) // 12
    blocks = [b for b in ref.decompose(seq)]
    assert result.missing_blocks == pybdm_missing(blocks)
    planes = qubd.ops.qubd(w, 2, clip)
    assert result.planes == (float(planes[0]), float(planes[1]))
    assert result.bitplane == pytest.approx(float(planes.sum()), rel=1e-15)
    # The bit-plane sum itself, from pybdm's 2D BDM of each plane.
    ref2 = pybdm.BDM(ndim=2)
    expected_planes = sum(ref2.bdm((q >> p) & 1) for p in range(2))
    assert result.bitplane == pytest.approx(expected_planes, rel=1e-12)


@pytest.mark.parametrize("name,make", WEIGHTS)
def test_kary_per_row_matches_pybdm_pooled_counters(name, make, ref):
    g = torch.Generator().manual_seed(2 * len(name))
    torch.manual_seed(len(name))
    w = make(g)
    q = codes_matrix(w)
    result = kary_qubd(w, per_row=True)
    expected = ref.compute_bdm(*[ref.decompose_and_count(row) for row in q])
    assert result.kary == pytest.approx(expected, rel=1e-12)
    assert result.blocks == q.shape[0] * (q.shape[1] // 12)


def test_kary_counts_missing_blocks_and_warns(ref):
    torch.manual_seed(0)
    w = torch.rand(64, 96)  # uniform codes: blocks missing from ctm-b4-d12 are common
    result = kary_qubd(w)
    assert result.missing_blocks > 0
    with pytest.warns(Warning, match="does not contain"):
        kary_qubd(w, warn_if_missing_ctm=True)
    with pytest.raises(ValueError, match="does not contain"):
        kary_qubd(w, missing_ctm="error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert result.kary == pytest.approx(
            pybdm.BDM(ndim=1, nsymbols=4).bdm(codes_matrix(w).reshape(-1)), rel=1e-12
        )


def test_kary_equals_bdm_api():
    torch.manual_seed(1)
    w = torch.randn(20, 30)
    q = codes_matrix(w)
    assert kary_qubd(w).kary == BDM(1, 4, warn_if_missing_ctm=False).bdm(q.reshape(-1))


@pytest.mark.parametrize(
    "w,match",
    [
        (torch.randn(100), "at least 2 dimensions"),
        (torch.randn(3, 40), "side < 4"),
        (torch.randint(0, 3, (8, 8)), "float"),
        (torch.empty(0, 8), "empty"),
    ],
)
def test_kary_bad_weights(w, match):
    with pytest.raises(ValueError, match=match):
        kary_qubd(w)


def test_kary_per_row_needs_long_rows():
    with pytest.raises(ValueError, match="per_row"):
        kary_qubd(torch.randn(16, 8), per_row=True)
