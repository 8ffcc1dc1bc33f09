"""The progress bar: the rate is measured over real (here: a fake) time, and the bar advances tensor
by tensor while a model is scored, not all at once at the end."""

from __future__ import annotations

import io

import torch
from rich.console import Console

import qubd.report.scoring as scoring
from qubd.checkpoints import TensorEntry
from qubd.report import score
from qubd.report.progress import WeightsProgress, weights_text


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _entry(name: str, numel: int) -> TensorEntry:
    return TensorEntry(
        name=name, shape=(numel // 4, 4), dtype="float32", load=lambda: torch.zeros(numel // 4, 4)
    )


def test_rate_is_weights_done_over_the_time_since_the_bar_started():
    clock = FakeClock()
    bar = WeightsProgress(3_000_000, clock, Console(file=io.StringIO()))
    clock.now += 50.0  # built long before scoring starts: that time does not count
    with bar as advance:
        assert "- weights/s" in weights_text(bar.task.completed, bar.task.total, bar.task.elapsed)
        clock.now += 2.0
        advance(_entry("a", 1_000_000))
        assert bar.task.completed == 1_000_000 and bar.task.elapsed == 2.0
        text = weights_text(bar.task.completed, bar.task.total, bar.task.elapsed)
        # 1M weights in 2 s: 500k/s, and 2M left at that rate is 4 s
        assert text == "1.0M/3.0M, 500.0k weights/s, 0:04 left", text
        clock.now += 0.001  # the next two finish together: no spike, the average over 2.001 s
        advance(_entry("b", 1_000_000))
        advance(_entry("c", 1_000_000))
        text = weights_text(bar.task.completed, bar.task.total, bar.task.elapsed)
        assert text.startswith("3.0M/3.0M, 1.5M weights/s, 0:00 left"), text


def test_bar_advances_tensor_by_tensor_while_a_model_is_scored(monkeypatch):
    """Events in order: each tensor's advance comes before the next group is measured."""
    events: list[tuple[str, int]] = []
    measure_many = scoring.measure_many

    def measuring(ws, options):
        events.append(("measure", len(ws)))
        return measure_many(ws, options)

    class Recorder:
        def __init__(self, total, enabled):
            self.total, self.enabled = total, enabled

        def __enter__(self):
            return lambda entry: events.append(("advance", entry.numel))

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(scoring, "measure_many", measuring)
    monkeypatch.setattr(scoring, "weights_progress", Recorder)
    g = torch.Generator().manual_seed(0)
    sizes = [(8, 8)] * 150 + [(1100, 1000)] * 2
    state = {f"t{i}.weight": torch.randn(shape, generator=g) for i, shape in enumerate(sizes)}
    score(state, baseline="none", progress=True)
    measured = [n for kind, n in events if kind == "measure"]
    advanced = [n for kind, n in events if kind == "advance"]
    assert sorted(advanced) == sorted(r * c for r, c in sizes)
    assert len(measured) >= 4 and max(measured) <= scoring.PROGRESS_GROUP_TENSORS
    # every tensor of a group is advanced before the next group is measured
    for i, event in enumerate(events):
        if event[0] == "measure":
            before = events[:i]
            assert sum(k == "advance" for k, _ in before) == sum(n for k, n in before if k == "measure")
    # without a bar, groups of GROUP_TENSORS tensors: the two large ones join the last group
    events.clear()
    score(state, baseline="none")
    whole_groups = [scoring.GROUP_TENSORS] * (len(sizes) // scoring.GROUP_TENSORS)
    assert [n for kind, n in events if kind == "measure"] == whole_groups + [
        len(sizes) % scoring.GROUP_TENSORS
    ]
