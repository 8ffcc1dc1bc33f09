"""Per-call cost of ``ops.qubd`` / ``ops.qubd_batched`` on the CPU, this checkout against another one
(e.g. the commit before a change to the op layer), measured in the same run.

    python benchmarks/bench_dispatch.py /path/to/other/checkout [--rounds 30]

The other checkout needs its native extension built. One worker process per checkout; the two are
driven in lockstep, call by call (A, B, B, A, ...), so that a busy machine (other processes) slows
both alike. Prints one row per case: each side's fastest call, and the median over rounds of the
ratio of the two calls made back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
# (name, shapes of the tensors, clip)
CASES = [
    ("qubd 4x4", [(4, 4)], None),
    ("qubd 4x4 clip", [(4, 4)], 99.9),
    ("qubd 64x64", [(64, 64)], None),
    ("qubd 1024x1024", [(1024, 1024)], None),
    ("qubd 1024x1024 clip", [(1024, 1024)], 99.9),
    ("qubd 4096x4096", [(4096, 4096)], None),
    ("qubd_batched 64 x 4x4", [(4, 4)] * 64, None),
    ("qubd_batched 16 x 256x256 clip", [(256, 256)] * 16, 99.9),
]


def worker() -> None:
    """Reads a case index per line; answers with the seconds of one call of it."""
    import torch

    import qubd

    runs = []
    for _, shapes, clip in CASES:
        g = torch.Generator().manual_seed(0)
        ws = [torch.randn(shape, generator=g) for shape in shapes]
        if len(ws) == 1:
            runs.append(lambda ws=ws, clip=clip: qubd.ops.qubd(ws[0], 8, clip))
        else:
            runs.append(lambda ws=ws, clip=clip: qubd.ops.qubd_batched(ws, 8, clip))
        runs[-1]()  # warm up
    print("ready", flush=True)
    for line in sys.stdin:
        run = runs[int(line)]
        started = time.perf_counter()
        run()
        print(json.dumps(time.perf_counter() - started), flush=True)


def start(checkout: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("QUBD_BACKEND", None)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker"], env=env, cwd=checkout, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    return proc


def call(proc: subprocess.Popen, case: int) -> float:
    proc.stdin.write(f"{case}\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def main() -> None:
    if "--worker" in sys.argv:
        worker()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the checkout to compare with (e.g. before a change)")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    other, this = start(args.other.resolve()), start(HERE)
    print(f"{'case':<32} {'other ms':>10} {'this ms':>10} {'median this/other':>18}")
    for case, (name, *_) in enumerate(CASES):
        times = {"other": [], "this": []}
        for round_ in range(args.rounds):
            pair = [("other", other), ("this", this)]
            for side, proc in pair if round_ % 2 == 0 else reversed(pair):
                times[side].append(call(proc, case))
        ratio = statistics.median(t / o for t, o in zip(times["this"], times["other"], strict=True))
        print(
            f"{name:<32} {min(times['other']) * 1e3:>10.3f} {min(times['this']) * 1e3:>10.3f} {ratio:>18.3f}"
        )
    for proc in (other, this):
        proc.stdin.close()
        proc.wait()


if __name__ == "__main__":
    main()
