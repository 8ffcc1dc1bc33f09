"""Per-call cost of ``ops.qubd`` / ``ops.qubd_batched`` on the CPU, this checkout against another one
(e.g. the commit before a change to the op layer), measured in the same run.

    python benchmarks/bench_dispatch.py /path/to/other/checkout [--rounds 7]

The other checkout needs its native extension built. Each round starts one worker process per
checkout, in alternating order; each case keeps its fastest call over all rounds, so that a busy
machine (other processes) distorts neither side. Prints one row per case: best ms of each side and
their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
# (name, shapes of the tensors, clip, calls per round)
CASES = [
    ("qubd 4x4", [(4, 4)], None, 200),
    ("qubd 4x4 clip", [(4, 4)], 99.9, 200),
    ("qubd 64x64", [(64, 64)], None, 200),
    ("qubd 1024x1024", [(1024, 1024)], None, 10),
    ("qubd 1024x1024 clip", [(1024, 1024)], 99.9, 10),
    ("qubd 4096x4096", [(4096, 4096)], None, 2),
    ("qubd_batched 64 x 4x4", [(4, 4)] * 64, None, 10),
    ("qubd_batched 16 x 256x256 clip", [(256, 256)] * 16, 99.9, 3),
]


def worker() -> None:
    import torch

    import qubd

    best = {}
    for name, shapes, clip, calls in CASES:
        g = torch.Generator().manual_seed(0)
        ws = [torch.randn(shape, generator=g) for shape in shapes]
        if len(ws) == 1:
            run = lambda ws=ws, clip=clip: qubd.ops.qubd(ws[0], 8, clip)  # noqa: E731
        else:
            run = lambda ws=ws, clip=clip: qubd.ops.qubd_batched(ws, 8, clip)  # noqa: E731
        run()
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        best[name] = min(times)
    print(json.dumps(best))


def measure(checkout: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("QUBD_BACKEND", None)
    out = subprocess.run(
        [sys.executable, __file__, "--worker"],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if "--worker" in sys.argv:
        worker()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the checkout to compare with (e.g. before a change)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sides = {"other": args.other.resolve(), "this": HERE}
    best: dict[str, dict[str, float]] = {side: {} for side in sides}
    for round_ in range(args.rounds):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for side in order:
            for name, seconds in measure(sides[side]).items():
                best[side][name] = min(seconds, best[side].get(name, float("inf")))
    print(f"{'case':<32} {'other ms':>10} {'this ms':>10} {'this/other':>11}")
    for name, *_ in CASES:
        other, this = best["other"][name] * 1e3, best["this"][name] * 1e3
        print(f"{name:<32} {other:>10.3f} {this:>10.3f} {this / other:>11.3f}")


if __name__ == "__main__":
    main()
