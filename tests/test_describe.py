"""``qubd.describe`` / ``qubd score --dry-run``: what would be scored and skipped, without computing."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import qubd
from qubd.cli import main


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(
        {
            "dense.weight": torch.randn(16, 12),
            "dense.bias": torch.randn(16),
            "conv.weight": torch.randn(8, 2, 3, 3),
            "tiny.weight": torch.randn(3, 40),
            "ids": torch.arange(32).reshape(4, 8),
            "nan.weight": torch.full((8, 8), float("nan")),
        },
        path,
    )
    return path


def test_describe_agrees_with_what_score_does(checkpoint):
    description = qubd.describe(checkpoint, exclude="nan*")
    report = qubd.score(checkpoint, exclude="nan*", baseline="none")
    assert [t.name for t in description.scored] == [t.name for t in report.scored]
    assert {t.name: t.skipped for t in description.skipped} == {t.name: t.skipped for t in report.skipped}
    assert description.weights == report.weights == 16 * 12 + 8 * 18
    assert description.excluded == report.excluded == 1


def test_describe_reads_no_tensor(checkpoint):
    # scoring this tensor would stop on its NaN values: listing it shows it was not read
    description = qubd.describe(checkpoint, include="nan*")
    assert [t.name for t in description.scored] == ["nan.weight"]


def test_describe_a_module_lists_ties_and_biases():
    model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 10))
    model[1].weight = model[0].weight
    description = qubd.describe(model)
    assert [t.name for t in description.scored] == ["0.weight"]
    reasons = {t.name: t.skipped for t in description.skipped}
    assert reasons["1.bias"] == "1-D" and "1.weight" in reasons
    assert "would score 1 of 3 tensors (80 weights); 2 skipped" in repr(description)


def test_description_frame(checkpoint):
    pytest.importorskip("pandas", reason="pandas comes with the test extra")
    frame = qubd.describe(checkpoint).to_pandas()
    assert frame["scored"].sum() == 3 and frame["numel"].sum() == 16 * 12 + 16 + 8 * 18 + 120 + 32 + 64
    assert frame.loc[frame["name"] == "ids", "skipped"].item() == "not floating point (int64)"


def test_dry_run_lists_and_computes_nothing(checkpoint, tmp_path, capsys, monkeypatch):
    import qubd.report.scoring

    monkeypatch.setattr(qubd.report.scoring, "score_source", lambda *a, **k: pytest.fail("scored"))
    out_json = tmp_path / "r.json"
    assert main(["score", str(checkpoint), "--dry-run", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{checkpoint}: would score 3 of 6 tensors (400 weights); 3 skipped (")
    assert all(kind in out[0] for kind in ("1 1-D", "1 side < 4", "1 not floating point"))
    assert any(line.split()[:2] == ["score", "dense.weight"] for line in out)
    assert any(line.split()[:2] == ["skip", "dense.bias"] and line.endswith("1-D") for line in out)
    assert "nothing computed" in out[-1]
    assert not out_json.exists()
