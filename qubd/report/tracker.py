"""Log a model's per-plane QuBD during training (the paper's main use), to JSON, plottable."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from qubd.checkpoints import open_source
from qubd.report.options import ScoreOptions
from qubd.report.plots import plot_history
from qubd.report.report import Report
from qubd.report.scoring import score_source, scored_by_every_rank
from qubd.report.serialize import log_entry, log_header, write_log
from qubd.report.writers import check_writable


class ComplexityTracker:
    """Scores ``model`` every ``every`` steps and keeps the per-plane QuBD, baseline and ratio.

    ::

        tracker = ComplexityTracker(model, "qubd_log.json", every=100)
        for step, batch in enumerate(loader):
            ...  # train
            tracker.step(step)      # scores when step % 100 == 0, rewrites qubd_log.json
        tracker.plot("qubd_log.png")  # or: qubd plot qubd_log.json -o qubd_log.png

    The options: ``options`` (a ``ScoreOptions``) with the keywords of ``qubd.score`` (``bits=4``, ...)
    replacing its fields. The log file is rewritten atomically after each entry.
    """

    def __init__(
        self,
        model: nn.Module,
        path: str | Path | None = None,
        *,
        every: int = 1,
        options: ScoreOptions | None = None,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        **keywords: Any,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"ComplexityTracker tracks an nn.Module, got {type(model).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.model = model
        self.path = None if path is None else check_writable(path)
        self.every = every
        self.include = include
        self.exclude = exclude
        self.options = ScoreOptions.of(options, **keywords)
        self.entries: list[dict] = []

    def step(self, step: int) -> Report | None:
        """Score the model if ``step`` is a multiple of ``every``; the report, or None."""
        return self.log(step) if step % self.every == 0 else None

    def log(self, step: int) -> Report:
        """Score the model now and append the result, labelled ``step``."""
        report = self._score()
        self.entries.append(log_entry(report, step))
        if self.path is not None and _writes_files(self.model):
            self.save(self.path)
        return report

    def _score(self) -> Report:
        if scored_by_every_rank(self.model):
            from qubd.distributed.scoring import score_model

            return score_model(self.model, self.options, self.include, self.exclude)
        with open_source(self.model, self.include, self.exclude) as source:
            return score_source(source, self.options)

    def to_dict(self) -> dict:
        return log_header(type(self.model).__name__, self.options) | {"entries": self.entries}

    def save(self, path: str | Path) -> None:
        write_log(path, self.to_dict())

    def plot(self, path: str | Path) -> None:
        plot_history(self.to_dict(), path)


def _writes_files(model: nn.Module) -> bool:
    """A model scored by every rank (DDP, FSDP2, ...) has its log written by rank 0 only (every rank
    keeps the entries)."""
    import torch.distributed as dist

    return not scored_by_every_rank(model) or dist.get_rank() == 0
