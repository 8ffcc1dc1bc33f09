"""The shipped CTM tables against pybdm's own data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qubd.ctm import ctm16, load_table
from tests.oracles import pybdm

get_ctm_dataset = pybdm.utils.get_ctm_dataset
normalize_key = pybdm.encoding.normalize_key


def test_ctm16_equals_pybdm_lookup_for_every_4x4_block():
    pybdm_table, _ = get_ctm_dataset("CTM-B2-D4x4")
    table = ctm16().numpy()
    expected = np.array([pybdm_table[(4, 4)][normalize_key(format(code, "016b"))] for code in range(1 << 16)])
    np.testing.assert_array_equal(table, expected)


@settings(deadline=None)
@given(st.integers(0, 0xFFFF))
def test_ctm16_is_complement_symmetric(code):
    table = ctm16()
    assert table[code] == table[code ^ 0xFFFF]


@pytest.mark.parametrize("name", ["ctm-b2-d4x4", "ctm-b2-d12", "ctm-b4-d12", "ctm-b9-d12"])
def test_tables_hold_pybdm_data_exactly(name):
    pybdm_table, pybdm_missing = get_ctm_dataset(name.upper().replace("X", "x"))
    table = load_table(name)
    assert set(table.codes) == set(pybdm_table)
    k = table.nsymbols
    for shape, entries in pybdm_table.items():
        keys = np.array([int(key, k) for key in entries])
        values, found = table.lookup(shape, keys)
        assert found.all()
        np.testing.assert_array_equal(values, np.array(list(entries.values())))
        assert table.missing_value(shape) == pybdm_missing[shape]


def test_lookup_marks_absent_keys():
    table = load_table("ctm-b4-d12")
    absent = np.array([int("0" * 11 + "3", 4)])  # not normalised: symbol 3 before 1 and 2
    _, found = table.lookup((12,), absent)
    assert not found.any()


def test_unknown_table_is_an_error():
    with pytest.raises(ValueError, match="unknown CTM dataset"):
        load_table("ctm-b3-d12")
