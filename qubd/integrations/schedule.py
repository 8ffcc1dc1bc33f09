"""What both training callbacks do: score the model with ``ComplexityTracker`` every N steps (and at
step 0, before training) and log the scalars; each step once, however often the framework calls."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from qubd.integrations.sinks import ScalarSinks, report_scalars
from qubd.report.report import Report
from qubd.report.scoring import scored_by_every_rank
from qubd.report.tracker import ComplexityTracker


class ScheduledTracker:
    """``every``: score every N optimizer steps; ``path``: the tracker's JSON log (``qubd plot`` reads
    it); ``tensorboard``: a log folder or a ``SummaryWriter``; ``wandb``: log to the active W&B run
    (None: when there is one); ``options``: those of ``ComplexityTracker`` (bits, clip, baseline, ...)."""

    def __init__(
        self,
        every: int,
        path: str | os.PathLike | None,
        tensorboard: str | os.PathLike | Any | None,
        wandb: bool | None,
        options: dict[str, Any],
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every = every
        self.path = path
        self.options = options
        self.sinks = ScalarSinks(tensorboard, wandb)
        self.tracker: ComplexityTracker | None = None
        self._last_step: int | None = None

    def start(self, model: nn.Module, main_process: bool) -> None:
        """The tracker, on every process (the others score a model every rank scores together); the
        main process alone is given the log path, so no other checks or writes it."""
        path = self.path if main_process else None
        self.tracker = ComplexityTracker(model, path, every=self.every, **self.options)

    def at_step(self, step: int, main_process: bool) -> Report | None:
        """Score if ``step`` is due and not scored yet; the report, or None. Called on every process:
        the main process scores, and so does every other rank when the model is one every rank
        scores together (DTensor weights: FSDP2, tensor parallel), which the tracker then does
        without gathering a weight; only the main process logs the scalars (the tracker's JSON log
        is written by rank 0)."""
        if self.tracker is None:
            raise RuntimeError("the qubd callback was not started (no on-train-begin call reached it)")
        if step == self._last_step or step % self.every:
            return None
        if not (main_process or scored_by_every_rank(self.tracker.model)):
            return None
        self._last_step = step
        report = self.tracker.log(step)
        if main_process:
            self.sinks.log(report_scalars(report), step)
        return report

    def close(self) -> None:
        self.sinks.close()


class ScheduledCallback:
    """What both callbacks share: the constructor (``ScheduledTracker``'s arguments) and ``.tracker``.
    A callback lists it before the framework's callback class."""

    def __init__(
        self,
        every: int = 100,
        path: str | os.PathLike | None = None,
        *,
        tensorboard: str | os.PathLike | Any | None = None,
        wandb: bool | None = None,
        **options: Any,
    ):
        super().__init__()
        self.schedule = ScheduledTracker(every, path, tensorboard, wandb, options)

    @property
    def tracker(self) -> ComplexityTracker | None:
        """The tracker (its ``entries``, ``plot``); None before training starts."""
        return self.schedule.tracker
