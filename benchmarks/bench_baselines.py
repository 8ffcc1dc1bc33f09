"""The cost of each baseline against no baseline, measured in one run on one machine.

    python benchmarks/bench_baselines.py --layers 1 --rounds 2
    python benchmarks/bench_baselines.py --baselines none,reference --layers 8

Generates two Llama-shaped checkpoints of random bf16 weights (``make_sharded_checkpoint.py``, seeds 0
and 1: the second is the reference), then scores the first once per baseline and round, each in its
own process (``bench_score.py``, so peak memory is per baseline), the baselines interleaved round by
round so that a change of load on a shared machine hits them alike. Prints a Markdown table: median
time over the rounds, its ratio to the median time without a baseline, peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NONE = "none"


def _generate(path: Path, preset: str, layers: int, seed: int) -> None:
    command = [sys.executable, str(HERE / "make_sharded_checkpoint.py"), str(path), "--preset", preset]
    command += ["--layers", str(layers)]
    subprocess.run(command + ["--seed", str(seed)], check=True, stdout=sys.stderr)


def _score(checkpoint: Path, reference: Path, baseline: str, out: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, str(HERE / "bench_score.py"), str(checkpoint), "--baseline", baseline]
    command += ["--bits", str(args.bits), "--clip", str(args.clip), "--json", str(out)]
    if baseline == "reference":
        command += ["--reference", str(reference)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baselines", default="none,expected,shuffle,reference", help="comma-separated")
    parser.add_argument(
        "--preset", default="llama-7b", help="shapes of the checkpoints (make_sharded_checkpoint.py)"
    )
    parser.add_argument("--layers", type=int, default=1, help="decoder layers of the checkpoints")
    parser.add_argument("--rounds", type=int, default=2, help="measurements per baseline")
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--clip", type=float, default=99.9)
    parser.add_argument("--workdir", type=Path, default=None, help="where to generate (default: a temp dir)")
    args = parser.parse_args()
    baselines = args.baselines.split(",")
    if NONE not in baselines:
        baselines.insert(0, NONE)

    load_at_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="qubd-bench-baselines-", dir=args.workdir))
    try:
        checkpoint, reference = work / "checkpoint", work / "reference"
        _generate(checkpoint, args.preset, args.layers, seed=0)
        _generate(reference, args.preset, args.layers, seed=1)
        results: dict[str, list[dict]] = {b: [] for b in baselines}
        for round_ in range(args.rounds):
            for baseline in baselines:
                started = time.perf_counter()
                results[baseline].append(_score(checkpoint, reference, baseline, work / "r.json", args))
                print(f"round {round_}: {baseline} {time.perf_counter() - started:.1f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work)

    first = results[NONE][0]
    none_seconds = statistics.median(r["seconds"] for r in results[NONE])
    print(
        f"{first['checkpoint_gib']:.2f} GiB, {first['tensors']} tensors, {first['weights'] / 1e9:.2f} G "
        f"weights; {first['device']} ({first['backend']}, {first['threads']} threads), {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at "
        f"the end; {args.rounds} rounds"
    )
    print("| baseline | time (median) | times | vs none | peak anon. memory | peak RSS |")
    print("|---|---:|---|---:|---:|---:|")
    for baseline, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        times = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        anon = max(r["peak_anon_gib"] for r in runs)
        rss = max(r["peak_rss_gib"] for r in runs)
        print(
            f"| {baseline} | {seconds:.1f} s | {times} | {seconds / none_seconds:.2f}x | "
            f"{anon:.2f} GiB | {rss:.2f} GiB |"
        )


if __name__ == "__main__":
    main()
