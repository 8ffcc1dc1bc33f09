"""Helpers the benchmark scripts share: the best of repeated calls, and the CPU's name."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable


def best_time(
    fn: Callable[[], object], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn``, after one warm-up call, on ``clock``
    (wall time; ``time.process_time`` counts only the CPU time this process got: steadier on a
    shared machine, but for one thread only)."""
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def cpu_name() -> str:
    """The CPU's model name (lscpu's), or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
