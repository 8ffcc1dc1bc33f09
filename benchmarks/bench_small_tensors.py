"""Per-tensor cost of scoring small (4x4) tensors on the CPU, this checkout against another one
(e.g. the commit before a change), measured in the same run (issue 16, "per-tensor overhead").

    python benchmarks/bench_small_tensors.py /path/to/other/checkout [--rounds 3]

The other checkout needs its native extension built. Each round runs one process per checkout,
one after the other (A, B, B, A, ...), so that a busy machine slows both alike; a process times
``ops.qubd`` on one 4x4 tensor (fastest of 5 repeats of 200 calls) and ``ops.qubd_batched`` on
many 4x4 tensors (one call). Prints each side's best round, per tensor, and the ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _machine import other_checkout_arguments

HERE = Path(__file__).resolve().parents[1]

WORKER = """
import json, sys, time, timeit
import torch
import qubd
n = int(sys.argv[1])
g = torch.Generator().manual_seed(0)
w = torch.randn(4, 4, generator=g)
ws = [torch.randn(4, 4, generator=g) for _ in range(n)]
qubd.ops.qubd(w)
qubd.ops.qubd_batched(ws[:64])
single = min(timeit.repeat(lambda: qubd.ops.qubd(w), number=200, repeat=5)) / 200
started = time.perf_counter()
scores = qubd.ops.qubd_batched(ws)
batched = (time.perf_counter() - started) / n
assert scores.shape == (n, 8)
print(json.dumps({"qubd": single, "qubd_batched": batched}))
"""


def measure(checkout: Path, tensors: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(tensors)],
        env=env,
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    args = other_checkout_arguments(
        __doc__,
        rounds=3,
        tensors=100_000,
        other_tensors=5_000,
        tensors_help="4x4 tensors per qubd_batched call",
    )
    sides = {"this": (HERE, args.tensors), "other": (args.other.resolve(), args.other_tensors)}
    best: dict[str, dict[str, float]] = {}
    for r in range(args.rounds):
        for side in ("this", "other") if r % 2 == 0 else ("other", "this"):
            got = measure(*sides[side])
            best[side] = {k: min(v, best.get(side, {}).get(k, v)) for k, v in got.items()}
    print(f"{'case':34s} {'this':>12s} {'other':>12s} {'other/this':>10s}")
    for case in ("qubd", "qubd_batched"):
        this, other = best["this"][case], best["other"][case]
        label = f"{case} 4x4" if case == "qubd" else f"{case} ({args.tensors:,} | {args.other_tensors:,})"
        print(f"{label:34s} {this * 1e6:9.1f} us {other * 1e6:9.1f} us {other / this:9.1f}x")
    total = best["this"]["qubd_batched"] * args.tensors
    print(f"qubd_batched of {args.tensors:,} 4x4 tensors here: {total:.2f} s")


if __name__ == "__main__":
    main()
