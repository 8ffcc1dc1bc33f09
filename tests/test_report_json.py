"""A JSON report's tensor lines written from arrays (qubd.report.tensor_json, the default options) are
the text json's encoder writes for each tensor's entry, byte for byte, with and without the native
extension; numbers are written as Python's repr writes them."""

from __future__ import annotations

import json

import numpy as np
import pytest

import qubd
from qubd.report import tensor_json
from qubd.report.baselines import ExpectedBaseline
from qubd.report.options import ScoreOptions
from qubd.report.scores import ReportData, TensorScore
from qubd.report.serialize import report_to_dict, report_to_json
from tests.test_small_tensors import _mixed, closed_form_draws

SPECIAL = [0.0, -0.0, 1e16, 1e15, 9999999999999998.0, 1e-5, 1e-4, 0.0001234, 1.5e300, 5e-324]
SPECIAL += [2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 0.3, 100.0, -2.5e-7, 1e22, 1e23, 2.0**53]


@pytest.fixture(params=["native", "python"])
def formatter(request, monkeypatch):
    if request.param == "python":
        monkeypatch.setattr(tensor_json, "_native_repr_rows", None)
    elif tensor_json._native_repr_rows is None:
        pytest.skip("qubd._C is not built")
    return request.param


def _doubles() -> np.ndarray:
    """The special values, random bit patterns (every exponent, subnormals) and typical scores."""
    g = np.random.default_rng(0)
    bits = g.integers(0, 2**64, size=200_000, dtype=np.uint64).view(np.float64)
    typical = np.concatenate([g.standard_normal(50_000) * 1e3, g.random(50_000) * 1e-3])
    return np.concatenate([SPECIAL, bits[np.isfinite(bits)], typical, np.round(typical)])


def test_rows_are_written_as_repr_writes_each_number(formatter):
    x = _doubles()
    assert tensor_json.repr_rows(x) == [repr(v) for v in x.tolist()]
    rows = x[: len(x) // 7 * 7].reshape(-1, 7)
    assert tensor_json.repr_rows(rows) == [", ".join(map(repr, row)) for row in rows.tolist()]


def test_rows_are_written_between_the_pieces_given(formatter):
    x = _doubles()[: 3 * 5000].reshape(-1, 3)
    pieces = ['{"a": [', ", ", '], "b": ', "}"]
    got = tensor_json.repr_rows(x, pieces)
    assert got == [f'{{"a": [{a!r}, {b!r}], "b": {c!r}}}' for a, b, c in x.tolist()]
    with pytest.raises(ValueError):
        tensor_json.repr_rows(x, pieces[:-1])
    with pytest.raises(ValueError):
        tensor_json.repr_rows(x, ["", "\u00e9", ", ", ""])


def test_nan_is_null_and_an_infinity_is_refused(formatter):
    assert tensor_json.repr_rows(np.array([[1.5, np.nan], [np.nan, -0.0]])) == ["1.5, null", "null, -0.0"]
    with pytest.raises(ValueError):
        tensor_json.repr_rows(np.array([1.0, -np.inf]))


def _encoded(report: ReportData) -> str:
    """The report as json's encoder writes every tensor's dict (the path taken without arrays)."""
    data = report_to_dict(report)
    tensors = [json.dumps(t, allow_nan=False) for t in data.pop("tensors")]
    head = json.dumps(data, indent=1, allow_nan=False)
    return f'{head.removesuffix("}").rstrip()},\n "tensors": [\n  ' + ",\n  ".join(tensors) + "\n ]\n}\n"


@pytest.mark.parametrize(("bits", "clip"), [(8, 99.9), (3, None), (12, 99.0)])
def test_a_checkpoints_report_is_what_the_encoder_writes(tmp_path, formatter, bits, clip):
    """Skipped tensors between scored ones, a note, several shapes and dtypes."""
    report = qubd.score(_mixed(tmp_path), bits=bits, clip=clip)
    assert any(t.note for t in report.tensors) and report.skipped
    assert tensor_json.scored_tensor_lines(report.scored, report.options) is not None
    assert report.to_json() == _encoded(report)


def _report(tensors: list[TensorScore], **options) -> ReportData:
    return ReportData(source="made here", options=ScoreOptions(**options), tensors=tensors, seconds=1.0)


def _hand_made(planes: int = 8) -> list[TensorScore]:
    """Zero means and stds (ratio and z None), planes far below the baseline (advice), names and
    notes that json escapes."""
    tensors = []
    for i, values, means, stds in closed_form_draws(planes, 200):
        if i % 13 == 0:
            stds = [0.0] * planes
        t = TensorScore(f'layer "{i}" \u00e9\u4e2d\n', (4, 4 + i % 3), "float32")
        t.values["bdm"], t.expected["bdm"] = values, ExpectedBaseline(means, stds)
        t.note = 'a "note" \u00e9' if i % 5 == 0 else None
        tensors.append(t)
    return tensors


@pytest.mark.parametrize("planes", [1, 8, 16])
def test_undefined_ratios_advice_and_escaped_text_are_what_the_encoder_writes(formatter, planes):
    report = _report(_hand_made(planes), bits=planes)
    text = report_to_json(report)
    entries = json.loads(text)["tensors"]
    assert any(None in t["z"] for t in entries) and any(None in t["ratios"] for t in entries)
    assert any(t["total"]["z"] is None for t in entries) and any(t["planes_below_baseline"] for t in entries)
    assert text == _encoded(report)


def test_a_non_finite_number_is_refused_as_the_encoder_refuses_it(formatter):
    tensors = _hand_made()
    tensors[3].values["bdm"][2] = float("inf")
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        report_to_json(_report(tensors))


@pytest.mark.parametrize("options", [{"binary": True}, {"compressors": ("gzip",)}, {"baseline": "shuffle"}])
def test_other_measures_and_baselines_go_through_the_encoder(tmp_path, options):
    report = qubd.score(_mixed(tmp_path), **options)
    assert tensor_json.scored_tensor_lines(report.scored, report.options) is None
    assert report.to_json() == _encoded(report)
