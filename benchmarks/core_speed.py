"""CPU speed of ops.qubd against pybdm: weights/s per tensor size, clip, and thread count.

    python benchmarks/core_speed.py [--sizes 256 1024 4096 8192] [--out results.json]

pybdm (the paper's per-plane BDM) is timed on a slice of the same bit-planes and scaled to the
whole tensor; it is single-threaded. Needs pybdm installed (a test dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import torch
from _machine import best_time, cpu_name

import qubd
from qubd import _C

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pybdm import BDM

BITS = 8


def pybdm_weights_per_second(w: torch.Tensor, side: int = 256) -> float:
    """pybdm on all 8 planes of a side x side slice (quantised by qubd, as the planes are the same)."""
    codes = qubd.ops.quantize(w[:side, :side].contiguous(), BITS).numpy().astype(int)
    bdm = BDM(ndim=2)
    start = time.perf_counter()
    for p in range(BITS):
        bdm.bdm((codes >> p) & 1)
    return codes.size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096, 8192])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--repeats", type=int, default=20, help="calls per case; the best is kept")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()

    os.environ["QUBD_BACKEND"] = "native"
    reference = pybdm_weights_per_second(torch.randn(256, 256))
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}")
    print(f"pybdm (1 thread, 8 planes): {reference / 1e3:.0f} k weights/s")
    print(f"{'size':>11} {'clip':>5} {'threads':>7} {'ms':>9} {'M weights/s':>12} {'x pybdm':>9}")
    rows = []
    for side in args.sizes:
        w = torch.randn(side, side, generator=torch.Generator().manual_seed(side))
        for clip in (None, 99.9):
            for threads in args.threads:
                _C.set_num_threads(threads)
                seconds = best_time(lambda w=w, clip=clip: qubd.ops.qubd(w, BITS, clip), repeats=args.repeats)
                rate = w.numel() / seconds
                row = dict(
                    side=side,
                    clip=clip,
                    threads=threads,
                    seconds=seconds,
                    weights_per_s=rate,
                    speedup_vs_pybdm=rate / reference,
                )
                rows.append(row)
                print(
                    f"{side:>5}x{side:<5} {clip or '-':>5} {threads:>7} {seconds * 1e3:>9.2f} "
                    f"{rate / 1e6:>12.1f} {rate / reference:>9.0f}"
                )
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": cpu_name(), "pybdm_weights_per_s": reference, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    np.random.seed(0)
    main()
