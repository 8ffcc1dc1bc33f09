"""Reports in notebooks: DataFrames (per tensor x plane, per plane), the short repr, the HTML table."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from qubd import ops
from qubd.report import score
from qubd.report.baselines import run_seed, shuffled

pd = pytest.importorskip("pandas", reason="pandas comes with the test extra")


def _state_dict() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "smooth.weight": torch.linspace(-1, 1, 32 * 24).reshape(32, 24),
        "noise.weight": torch.randn(24, 20, generator=g),
        "noise.bias": torch.randn(24, generator=g),
    }


def test_tensor_frame_rows_are_each_tensors_planes_against_its_shuffles():
    weights = _state_dict()
    report = score(weights, bits=4, clip=None, baseline="shuffle", repeats=3, seed=5)
    frame = report.to_pandas()
    assert list(frame.columns) == [
        "name", "shape", "dtype", "plane", "qubd", "baseline", "baseline_std", "ratio", "z_score", "skipped"
    ]  # fmt: skip
    for name in ("smooth.weight", "noise.weight"):
        w = weights[name]
        rows = frame[frame["name"] == name].sort_values("plane")
        assert rows["plane"].tolist() == [0, 1, 2, 3]
        assert rows["shape"].tolist() == [tuple(w.shape)] * 4
        np.testing.assert_allclose(rows["qubd"], ops.qubd(w, bits=4).numpy(), rtol=1e-12)
        runs = np.stack([ops.qubd(shuffled(w, run_seed(5, name, r)), bits=4).numpy() for r in range(3)])
        np.testing.assert_allclose(rows["baseline"], runs.mean(0), rtol=1e-12)
        np.testing.assert_allclose(rows["baseline_std"], runs.std(0, ddof=1), rtol=1e-9)
        np.testing.assert_allclose(rows["ratio"], 100 * rows["qubd"] / runs.mean(0), rtol=1e-12)
        z = (ops.qubd(w, bits=4).numpy() - runs.mean(0)) / runs.std(0, ddof=1)
        np.testing.assert_allclose(rows["z_score"], z, rtol=1e-9)
        assert rows["skipped"].isna().all()
    bias = frame[frame["name"] == "noise.bias"]
    assert len(bias) == 1 and bias["skipped"].item() == "1-D"
    assert bias["plane"].isna().item() and np.isnan(bias["qubd"].item())


def test_plane_frame_sums_the_tensor_frame():
    report = score(_state_dict(), bits=4, baseline="shuffle", repeats=2)
    tensors = report.to_pandas("tensor").dropna(subset=["plane"])
    planes = report.to_pandas(by="plane")
    sums = tensors.groupby("plane")[["qubd", "baseline"]].sum()
    np.testing.assert_allclose(planes["qubd"], sums["qubd"], rtol=1e-12)
    np.testing.assert_allclose(planes["baseline"], sums["baseline"], rtol=1e-12)
    assert planes["below_baseline"].tolist() == [p in report.advice.planes_below for p in range(4)]
    # the smooth ramp's most significant plane is far simpler than its shuffle
    assert planes["below_baseline"].iloc[-1]


def test_without_repeats_there_is_no_z_score_and_without_baseline_no_ratio():
    one_run = score(_state_dict(), bits=4, baseline="shuffle").to_pandas()
    assert one_run["baseline"].notna().any() and one_run["z_score"].isna().all()
    none = score(_state_dict(), bits=4, baseline="none").to_pandas(by="plane")
    assert none[["baseline", "ratio", "z_score"]].isna().all().all()


def test_bad_frame_kind():
    with pytest.raises(ValueError, match="'tensor' or 'plane'"):
        score(_state_dict(), bits=4).to_pandas(by="layer")


def test_missing_pandas_is_a_clear_error(monkeypatch):
    report = score(_state_dict(), bits=4)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"to_pandas needs pandas.*pip install 'qubd\[pandas\]'"):
        report.to_pandas()


def test_repr_is_short_and_names_model_settings_totals_advice():
    report = score(_state_dict(), bits=4, clip=99.0, baseline="shuffle", repeats=2)
    text = repr(report)
    assert "\n" not in text and len(text) < 300
    assert "'state dict'" in text
    assert (
        "4 bits, clip 99th percentile, baseline shuffle (seed 0, 2 runs)" in text
    )  # as the table titles say
    assert f"{report.total.ratio:.1f}% of baseline" in text
    assert f"suggested bits {report.advice.suggested_bits}" in text


def test_html_table_has_a_row_per_plane_and_total():
    report = score(_state_dict(), bits=4)
    html = report._repr_html_()
    assert html.count("<tr") == 1 + 4 + 1  # header, planes, total
    assert "4 bits, clip 99.9th percentile, baseline expected" in html  # the defaults, in the titles' words
    for p in report.planes:
        assert f"{p.ratio:.2f}" in html
    report.source = "<b>model</b>"
    assert "&lt;b&gt;model&lt;/b&gt;" in report._repr_html_()
