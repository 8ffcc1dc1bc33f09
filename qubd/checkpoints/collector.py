"""Python's cyclic garbage collector paused while many small records are built: a checkpoint's
entries, a report's per-tensor records.

Listing a checkpoint, scoring it and writing its report make a few small objects per tensor (lists,
dicts, records) that stay alive until the report is dropped, and none of them refer back to
themselves. The collector, run every few hundred allocations, scans the ever-larger set of live ones
again and again: ~10 µs a tensor of a checkpoint of 100,000 small tensors, a third of the whole
cost. Paused, memory is still freed as usual (reference counts); only cycles wait for the
collector's next run, after the block (its first pass then scans the records once).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (nested blocks, or a collector the caller
    paused already, are left as they are)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def collector_running() -> Iterator[None]:
    """The collector running for the block, inside a ``collector_paused`` one: for a step that makes
    cycles of its own (a plot: matplotlib's figures); paused again after it."""
    was_enabled = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        if not was_enabled:
            gc.disable()
