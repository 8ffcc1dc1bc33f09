"""What the figures show: the model's name and settings in the title, a ratio axis with 100% and a
span that keeps a 1-point drop small, a row per layer for big models, and dots exactly where a cell
lies beyond noise (checked against the tensors' own numbers, summed here independently)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import qubd.report.plots as plots
from qubd.report import ComplexityTracker, score
from qubd.report.advice import NOISE_SIGMAS


@pytest.fixture
def figures(monkeypatch) -> list:
    """The figures the plot functions would save, instead of saving them."""
    saved = []
    monkeypatch.setattr(plots, "_save", lambda fig, *args, **kwargs: saved.append(fig))
    return saved


def _layers(count: int, per_layer: int, structured: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    state = {}
    for layer in range(count):
        for k in range(per_layer):
            w = torch.randn(16, 12, generator=g)
            if layer < structured:
                w = w + torch.linspace(-3, 3, 12)
            state[f"model.layers.{layer}.proj{k}.weight"] = w
    return state


@pytest.mark.parametrize(
    ("source", "name"),
    [
        (
            "/home/u/.cache/huggingface/hub/models--org--tiny-bert/snapshots/abc123/model.safetensors",
            "org/tiny-bert",
        ),
        ("/data/runs/llama-7b/model.safetensors", "runs/llama-7b"),
        ("/data/runs/step100.pt", "runs/step100.pt"),
        ("a module (Sequential)", "a module (Sequential)"),
    ],
)
def test_model_name_is_short(source, name):
    assert plots.model_name(source) == name


def test_ratio_axis_shows_100_and_keeps_a_one_point_drop_small():
    low, high = plots.ratio_limits(np.array([99.0, 100.2, 100.0]))
    assert low < 99.0 and high > 100.2 and low <= 100 <= high
    assert 1.0 / (high - low) < 0.1  # a 1-point drop is less than a tenth of the axis
    low, high = plots.ratio_limits(np.array([40.0, 100.0]), np.array([5.0, 0.0]))
    assert low < 35.0 and high >= 100.0


def test_report_figure_names_model_and_settings(figures, tmp_path):
    report = score(_layers(2, 3, structured=1), bits=6, clip=99.0)
    report.source = "/x/cache/models--acme--net/snapshots/0123/model.safetensors"
    report.plot(tmp_path / "r.png")
    title = figures[0]._suptitle.get_text()
    assert "/x/cache" not in title
    for part in ("acme/net", "6 bits", "clip 99th percentile", "baseline expected"):
        assert part in title, title
    bars = figures[0].axes[0]
    low, high = bars.get_ylim()
    assert low <= 100.0 - plots.RATIO_AXIS_BELOW and high >= 100.0


def test_figure_and_table_titles_word_the_settings_alike(figures, tmp_path):
    from rich.console import Console

    from qubd.report.table import print_report

    report = score(_layers(1, 2), bits=4, clip=None, baseline="shuffle", seed=3, repeats=2)
    report.plot(tmp_path / "r.png")
    console = Console(record=True, width=300)
    print_report(report, console)
    settings = "4 bits, min/max range, baseline shuffle (seed 3, 2 runs)"
    assert settings in figures[0]._suptitle.get_text()
    assert settings in console.export_text()


def test_many_tensors_get_a_row_per_layer_and_dots_beyond_noise(figures, tmp_path):
    state = _layers(30, 8, structured=3)  # 240 tensors
    report = score(state)
    report.plot(tmp_path / "r.png")
    heat = figures[0].axes[1]
    labels = [t.get_text() for t in heat.get_yticklabels()]
    assert labels == [f"model.layers.{i} (8)" for i in range(30)]
    # the oracle: each layer's per-plane sum against its summed baseline, from the tensors' numbers
    expected_cells = set()
    for layer in range(30):
        tensors = [t for t in report.scored if t.name.startswith(f"model.layers.{layer}.")]
        values = np.sum([t.values["bdm"] for t in tensors], axis=0)
        mean = np.sum([t.expected["bdm"].mean for t in tensors], axis=0)
        std = np.sqrt(np.sum([np.square(t.expected["bdm"].std) for t in tensors], axis=0))
        z = (values - mean) / std
        expected_cells |= {(plane, layer) for plane in np.nonzero(np.abs(z) > NOISE_SIGMAS)[0]}
    (dots,) = heat.collections
    assert {(int(x), int(y)) for x, y in dots.get_offsets()} == expected_cells
    assert {(7, layer) for layer in range(3)} <= expected_cells  # the structured layers are found
    height = figures[0].get_size_inches()[1]
    assert height < 20  # stays a readable page, not 240 rows


def test_training_log_figure(figures, tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(24, 32), torch.nn.Linear(32, 8))
    tracker = ComplexityTracker(model, tmp_path / "log.json", every=1)
    tracker.step(0)
    with torch.no_grad():
        model[0].weight.copy_(torch.linspace(-1, 1, 24).repeat(32, 1))
    tracker.step(1)
    tracker.plot(tmp_path / "log.png")
    fig = figures[0]
    assert "Sequential" in fig._suptitle.get_text() and "8 bits" in fig._suptitle.get_text()
    per_plane = fig.axes[0]
    low, high = per_plane.get_ylim()
    assert low <= 100.0 - plots.RATIO_AXIS_BELOW and high >= 100.0
    entries = json.loads((tmp_path / "log.json").read_text())["entries"]
    dotted = sum(len(c.get_offsets()) for c in per_plane.collections)
    beyond = sum(abs(p["z"]) > NOISE_SIGMAS for e in entries for p in e["planes"] if p["z"] is not None)
    assert dotted == beyond and beyond > 0
