"""``qubd score``'s table shows the numbers of its JSON report (the model's sums, summed once for the
table), and the cyclic collector is paused while the report is built and written, not while plotting."""

from __future__ import annotations

import gc
import json
import re

import pytest
import torch
from safetensors.torch import save_file

import qubd
from qubd.report import plots, scoring
from tests.test_cli import run
from tests.test_report_json import _encoded


@pytest.fixture
def structured(tmp_path):
    """Smooth tensors (planes far below their baseline: advice) and noise."""
    g = torch.Generator().manual_seed(3)
    tensors = {
        f"smooth.{i}.weight": torch.linspace(-1, 1, 48 * 40).reshape(48, 40) * (i + 1) for i in range(3)
    }
    tensors |= {f"noise.{i}.weight": torch.randn(16, 12, generator=g) for i in range(5)}
    path = tmp_path / "model.safetensors"
    save_file(tensors, path)
    return path


def _row(out: str, label: str) -> list[str]:
    """The cells of the table row whose first cell is ``label``."""
    for line in out.splitlines():
        cells = [c.strip() for c in re.split("[│┃]", line)[1:-1]]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in\n{out}")


def test_the_table_shows_the_reports_planes_total_and_advice(capsys, structured, tmp_path):
    report = tmp_path / "r.json"
    status, out, err = run(capsys, "score", str(structured), "--json", str(report))
    assert status == 0, err
    data = json.loads(report.read_text())
    labels = ["0 (LSB)", *map(str, range(1, 7)), "7 (MSB)"]
    for label, p in [*zip(labels, data["planes"], strict=True), ("total", data["total"])]:
        assert _row(out, label) == [
            label,
            f"{p['bdm']:,.1f}",
            f"{p['baseline']:,.1f} ± {p['baseline_std']:,.1f}",
            f"{p['ratio']:.2f}",
            f"{p['z']:+.1f}",
        ]
    advice = data["advice"]
    assert advice["planes_below_baseline"], "the smooth tensors should lie below their baseline"
    planes = ", ".join(map(str, sorted(advice["planes_below_baseline"], reverse=True)))
    assert f"in plane(s) {planes} " in " ".join(out.split())
    assert f"in the top {advice['suggested_bits']} of 8 bits" in " ".join(out.split())


def test_the_collector_is_paused_while_scoring_and_runs_while_plotting(
    capsys, structured, tmp_path, monkeypatch
):
    seen = {}

    def spy(name, fn):
        def wrapped(*args, **kwargs):
            seen[name] = gc.isenabled()
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(scoring, "score_entries", spy("scoring", scoring.score_entries))
    monkeypatch.setattr(plots, "plot_report", spy("plotting", plots.plot_report))
    assert gc.isenabled()
    status, _, err = run(capsys, "score", str(structured), "--plot", str(tmp_path / "r.png"), "--quiet")
    assert status == 0, err
    assert seen == {"scoring": False, "plotting": True}
    assert gc.isenabled()


def _without_timing(text: str) -> str:
    return re.sub(r'\n "(seconds|weights_per_second)": [^\n]*', "", text)


def test_the_json_file_is_the_reports_json_text(capsys, tmp_path):
    """Written in parts of many tensors each: more tensors than a part holds, skipped ones among them."""
    g = torch.Generator().manual_seed(5)
    tensors = {f"layer{i:04d}.weight": torch.randn(4, 4, generator=g) for i in range(2100)}
    tensors |= {f"layer{i:04d}.bias": torch.randn(4, generator=g) for i in range(0, 2100, 300)}
    path, out = tmp_path / "model.safetensors", tmp_path / "r.json"
    save_file(tensors, path)
    status, _, err = run(capsys, "score", str(path), "--json", str(out), "--quiet")
    assert status == 0, err
    expected = _encoded(qubd.score(path))  # json's encoder, one tensor a line
    assert _without_timing(out.read_text(encoding="utf-8")) == _without_timing(expected)
    assert len(json.loads(expected)["tensors"]) == len(tensors)
