"""End-to-end cost of scoring checkpoints of many small tensors on the CPU (issue 16, "per-tensor
overhead"): ``qubd.score`` and the ``qubd score`` CLI, default options (expected baseline, clip
99.9), this checkout against another one (e.g. the commit before a change), in the same run.

    python benchmarks/small_tensors.py /path/to/other/checkout [--tensors 100000] [--rounds 2]

Two safetensors checkpoints are written to a temporary folder: ``small``, 4x4 float32 tensors
(``--tensors`` of them here, ``--other-tensors`` for the other checkout, which may be far slower),
and ``mixed``, a conv-net / mixture-of-experts-like mix: 3x3x64x64 kernels with their biases and
norm weights (1-D, skipped), 1x1x64x256 kernels and 32x64 expert matrices. Each round runs one
process per checkout, one after the other (A, B, B, A, ...), so that a busy machine slows both
alike; each case is timed once per round (after a warm-up on a few tensors) and the best round
kept. Prints the seconds per scored tensor of each side and the ratio, and the totals here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _machine import other_checkout_arguments
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parents[1]

WORKER = """
import json, sys, time
import qubd
small, mixed, warm = sys.argv[1:4]
qubd.score(warm)
times = {}
for case, path, clip in (("small", small, 99.9), ("small, clip None", small, None), ("mixed", mixed, 99.9)):
    started = time.perf_counter()
    report = qubd.score(path, clip=clip)
    times[case] = (time.perf_counter() - started, len(report.scored))
print(json.dumps(times))
"""


def small_checkpoint(path: Path, tensors: int) -> None:
    g = torch.Generator().manual_seed(0)
    save_file({f"layer{i}.weight": torch.randn(4, 4, generator=g) for i in range(tensors)}, path)


def mixed_checkpoint(path: Path, blocks: int = 64) -> None:
    g = torch.Generator().manual_seed(1)
    tensors = {}
    for i in range(blocks):
        tensors[f"block{i}.conv.weight"] = torch.randn(64, 64, 3, 3, generator=g) * 0.05
        tensors[f"block{i}.conv.bias"] = torch.randn(64, generator=g)
        tensors[f"block{i}.norm.weight"] = torch.ones(64)
        tensors[f"block{i}.expand.weight"] = torch.randn(256, 64, 1, 1, generator=g) * 0.05
        for e in range(8):
            tensors[f"block{i}.experts.{e}.weight"] = torch.randn(32, 64, generator=g) * 0.1
    save_file(tensors, path)


def run_cli(checkout: Path, path: Path, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "qubd", "score", str(path), "--json", str(out)],
        env=env,
        cwd=checkout,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def measure(
    checkout: Path, small: Path, tensors: int, mixed: Path, warm: Path, folder: Path
) -> dict[str, float]:
    """Seconds per scored tensor of each case (the CLI's includes starting Python and importing qubd)."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(small), str(mixed), str(warm)],
        env=env,
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    )
    per_tensor = {case: seconds / n for case, (seconds, n) in json.loads(out.stdout.splitlines()[-1]).items()}
    per_tensor["small, CLI"] = run_cli(checkout, small, folder / "report.json") / tensors
    return per_tensor


def main() -> None:
    args = other_checkout_arguments(
        __doc__,
        rounds=2,
        tensors=100_000,
        other_tensors=2_000,
        tensors_help="4x4 tensors in the small checkpoint",
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mixed, warm = folder / "mixed.safetensors", folder / "warm.safetensors"
        mixed_checkpoint(mixed)
        small_checkpoint(warm, 64)
        sides = {}
        for side, checkout, count in (
            ("this", HERE, args.tensors),
            ("other", args.other.resolve(), args.other_tensors),
        ):
            small = folder / f"small-{side}.safetensors"
            small_checkpoint(small, count)
            sides[side] = (checkout, small, count)
        best: dict[str, dict[str, float]] = {}
        for r in range(args.rounds):
            for side in ("this", "other") if r % 2 == 0 else ("other", "this"):
                got = measure(*sides[side], mixed, warm, folder)
                best[side] = {k: min(v, best.get(side, {}).get(k, v)) for k, v in got.items()}
    print(f"{'case (per scored tensor)':28s} {'this':>12s} {'other':>12s} {'other/this':>10s}")
    for case in best["this"]:
        this, other = best["this"][case], best["other"][case]
        print(f"{case:28s} {this * 1e6:9.1f} us {other * 1e6:9.1f} us {other / this:9.1f}x")
    for case in ("small", "small, CLI"):
        print(f"{args.tensors:,} 4x4 tensors here, {case}: {best['this'][case] * args.tensors:.2f} s")


if __name__ == "__main__":
    main()
