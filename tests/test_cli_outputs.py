"""``qubd score``'s table shows the numbers of its JSON report (the model's sums, summed once for the
table), and the cyclic collector is paused while the report is built and written, not while plotting."""

from __future__ import annotations

import gc
import json
import re

import pytest
import torch
from safetensors.torch import save_file

from qubd.report import plots, scoring
from tests.test_cli import run


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
