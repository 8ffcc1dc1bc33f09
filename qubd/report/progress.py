"""A rich progress bar counting weights, with the rate in weights per second.

The rate is the weights scored so far over the wall-clock time since the bar started (not rich's
speed over its last samples, which a group of tensors finished at once turns into a spike), and the
time left is the weights left at that rate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from qubd.checkpoints import TensorEntry

ProgressHook = Callable[[TensorEntry], None]
UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def human(count: float) -> str:
    """12_345_678 -> "12.3M"."""
    for scale, unit in UNITS:
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return f"{count:.0f}"


def weights_progress(
    total_weights: int, enabled: bool, clock: Callable[[], float] = time.monotonic
) -> AbstractContextManager[ProgressHook | None]:
    """A context giving a hook to call after each tensor is scored (advancing by its weights), or
    None. ``clock`` (seconds) is what the rate is measured with."""
    if not enabled:
        return nullcontext(None)
    return WeightsProgress(total_weights, clock)


def rate_and_remaining(completed: float, total: float, elapsed: float | None) -> tuple[float, float] | None:
    """Weights per second over ``elapsed`` seconds, and the seconds left at that rate; None before
    anything was done (no rate to give)."""
    if not completed or not elapsed or elapsed <= 0:
        return None
    rate = completed / elapsed
    return rate, max(0.0, total - completed) / rate


def weights_text(completed: float, total: float, elapsed: float | None) -> str:
    """The bar's counts: "1.2M/4.8M, 2.4M weights/s, 0:02 left"."""
    measured = rate_and_remaining(completed, total, elapsed)
    if measured is None:
        rate = "- weights/s, - left"
    else:
        seconds = round(measured[1])
        rate = f"{human(measured[0])} weights/s, {seconds // 60}:{seconds % 60:02d} left"
    return f"{human(completed)}/{human(total)}, {rate}"


class WeightsProgress:
    """The rich bar of ``weights_progress``; ``task`` holds its counts (``completed``, ``total``)."""

    NAME_WIDTH = 28

    def __init__(self, total_weights: int, clock: Callable[[], float] = time.monotonic, console=None):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
        from rich.table import Column
        from rich.text import Text

        class WeightsColumn(ProgressColumn):
            def render(self, task) -> Text:
                return Text(weights_text(task.completed, task.total or 0, task.elapsed))

        self._progress = Progress(
            TextColumn("{task.description}", table_column=Column(width=self.NAME_WIDTH, no_wrap=True)),
            BarColumn(bar_width=20),
            WeightsColumn(table_column=Column(no_wrap=True)),
            console=console or Console(file=sys.stderr),
            transient=True,
            get_time=clock,
        )
        self._task = self._progress.add_task("scoring", total=total_weights, start=False)

    @property
    def task(self):
        return self._progress.tasks[0]

    def __enter__(self) -> ProgressHook:
        self._progress.start()
        self._progress.start_task(self._task)  # the clock starts here, not when the bar was built
        return self._advance

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def _advance(self, entry: TensorEntry) -> None:
        width = self.NAME_WIDTH
        name = entry.name if len(entry.name) <= width else "…" + entry.name[-(width - 1) :]
        self._progress.update(self._task, advance=entry.numel, description=name)


class CountProgress:
    """Progress over a count of items (e.g. the checkpoints of a series): ``working_on(label)`` before
    each item, ``done()`` after it. This base class shows nothing; ``count_progress`` gives a bar."""

    def __enter__(self) -> CountProgress:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def working_on(self, label: str) -> None:
        pass

    def done(self) -> None:
        pass


def count_progress(total: int, unit: str, enabled: bool) -> CountProgress:
    """A rich bar over ``total`` items of ``unit`` (plural), or a silent CountProgress."""
    return _RichCount(total, unit) if enabled else CountProgress()


class _RichCount(CountProgress):
    NAME_WIDTH = 28

    def __init__(self, total: int, unit: str):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        from rich.table import Column

        self._progress = Progress(
            TextColumn("{task.description}", table_column=Column(width=self.NAME_WIDTH, no_wrap=True)),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn(unit),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self._task = self._progress.add_task(unit, total=total)

    def __enter__(self) -> CountProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def working_on(self, label: str) -> None:
        width = self.NAME_WIDTH
        label = label if len(label) <= width else "…" + label[-(width - 1) :]
        self._progress.update(self._task, description=label)

    def done(self) -> None:
        self._progress.advance(self._task)
