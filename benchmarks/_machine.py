"""Helpers the benchmark scripts share: the best of repeated calls, the CPU's name, and the
arguments of a comparison with another checkout."""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path


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


def other_checkout_arguments(
    description: str, *, rounds: int, tensors: int, other_tensors: int, tensors_help: str
) -> argparse.Namespace:
    """The command line of a benchmark that times this checkout against another one in the same run:
    the other checkout, ``--rounds``, and ``--tensors`` (``tensors_help``) here and ``--other-tensors``
    there (an older checkout may be far slower)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("other", type=Path, help="the checkout to compare with (built)")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--tensors", type=int, default=tensors, help=f"{tensors_help}, here")
    parser.add_argument(
        "--other-tensors", type=int, default=other_tensors, help="the same in the other checkout"
    )
    return parser.parse_args()
