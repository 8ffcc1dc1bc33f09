"""Native CPU kernels against the speed of reading the weights, per instruction set, in one run.

    python benchmarks/cpu_kernels.py [--side 4096] [--repeats 7] [--small 10000]

Every time is the best of --repeats calls; every ratio is against a reference measured in the same
run (the machine is shared and noisy): `w.sum()` of the same tensor is the read limit, the min/max
`ops.qubd` path the reference for robust clipping. "range" is the range pass alone
(`value_bounds`: min, max and the finite check), "order stats" the exact order statistics that
clipping at 99.9 asks for. The small-tensor rows time --small tensors of 4x4 (at most 200 through
the dense path, 2,000 through the op) and give the per-tensor cost; the last row the grids of all of
them at once (`quant_grids`, min/max and clip 99.9) and `ops.qubd_batched` with clip 99.9.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import torch
from _machine import best_time, cpu_name

import qubd
from qubd import _C
from qubd.backends import native
from qubd.ctm.tables import ctm16
from qubd.range import clip_range, compute_dtype, quant_grid, quant_grids, value_range


def large(side: int, repeats: int, isas: list[str], thread_counts: list[int], cpu_time: bool) -> None:
    print(f"{'dtype':>9} {'isa':>8} {'thr':>3} {'sum ms':>7} {'range ms':>8} {'ostat ms':>8} {'hist ms':>8}"
          f" {'qubd ms':>8} {'clip ms':>8} {'read/hist':>9} {'read/qubd':>9} {'clip/qubd':>9}")  # fmt: skip
    w32 = torch.randn(side, side, generator=torch.Generator().manual_seed(0))
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        w = w32.to(dtype)
        grid = quant_grid(*value_range(w, None, torch.ops.qubd.order_statistics), 8)
        ranks = _clip_ranks(w.numel(), dtype, 99.9)
        hist = torch.empty(8, 65536, dtype=torch.int64)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            _C.set_num_threads(threads)
            clock = time.process_time if cpu_time and threads == 1 else time.perf_counter
            timed = partial(best_time, clock=clock)
            for isa in isas:
                _C.set_isa(isa)
                t_sum = timed(partial(torch.sum, w), repeats)
                t_range = timed(partial(native.value_bounds, [w]), repeats)
                t_ostat = timed(partial(native.order_statistics, w, ranks), repeats)
                code = native.DTYPE_CODES[dtype]
                args = (w.data_ptr(), code, side, side, grid.lo, grid.delta, 8, hist.data_ptr())
                t_hist = timed(partial(_C.weight_histograms, *args), repeats)
                t_qubd = timed(partial(qubd.ops.qubd, w, bits=8), repeats)
                t_clip = timed(partial(qubd.ops.qubd, w, bits=8, clip=99.9), repeats)
                print(
                    f"{str(dtype)[6:]:>9} {isa:>8} {threads:>3} {t_sum * 1e3:7.1f} {t_range * 1e3:8.1f}"
                    f" {t_ostat * 1e3:8.1f} {t_hist * 1e3:8.1f}"
                    f" {t_qubd * 1e3:8.1f} {t_clip * 1e3:8.1f} {t_sum / t_hist:9.2f} {t_sum / t_qubd:9.2f}"
                    f" {t_clip / t_qubd:9.2f}"
                )
    _C.set_isa(_C.supported_isas()[-1])


def _clip_ranks(n: int, dtype: torch.dtype, clip: float) -> list[int]:
    """The 0-based ranks that qubd.range.clip_range asks the order statistics for."""
    asked: list[int] = []
    clip_range(n, clip, compute_dtype(dtype), lambda ranks: asked.extend(ranks) or torch.zeros(len(ranks)))
    return asked


def small(count: int) -> None:
    torch.set_num_threads(1)
    _C.set_num_threads(1)
    ws = [torch.randn(4, 4, generator=torch.Generator().manual_seed(i)) for i in range(count)]
    grids = [quant_grid(*value_range(w, None, torch.ops.qubd.order_statistics), 8) for w in ws]
    table = ctm16("cpu")
    scores = torch.empty(8, dtype=torch.float64)

    def sparse() -> None:
        for w, g in zip(ws, grids, strict=True):
            _C.weight_scores(w.data_ptr(), 0, 4, 4, g.lo, g.delta, 8, table.data_ptr(), scores.data_ptr(), 0)

    dense_count, op_count = min(count, 200), min(count, 2000)

    def dense() -> None:
        for w, g in zip(ws[:dense_count], grids, strict=False):
            native.ctm_score(native.weight_histograms(w, g.lo, g.delta, 8))

    def whole_op() -> None:
        for w in ws[:op_count]:
            qubd.ops.qubd(w, bits=8)

    # Each time is divided by the number of tensors that call actually scored.
    t_sparse = best_time(sparse, 3) / count
    t_dense = best_time(dense, 3) / dense_count
    t_op = best_time(whole_op, 3) / op_count
    print(f"4x4 tensors, 1 thread: _C.weight_scores {t_sparse * 1e6:.1f} us each;"
          f" dense histograms + ctm_score {t_dense * 1e6:.0f} us each;"
          f" ops.qubd (Python layer included) {t_op * 1e6:.0f} us each")  # fmt: skip
    ostat = torch.ops.qubd.order_statistics
    t_grids = {clip: best_time(partial(quant_grids, ws, clip, 8, ostat), 3) / count for clip in (None, 99.9)}
    t_batched = best_time(partial(qubd.ops.qubd_batched, ws, 8, 99.9), 3) / count
    print(f"{count} 4x4 tensors at once: quant_grids {t_grids[None] * 1e6:.1f} us each (min/max),"
          f" {t_grids[99.9] * 1e6:.1f} us each (clip 99.9); ops.qubd_batched clip 99.9"
          f" {t_batched * 1e6:.1f} us each")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--small", type=int, default=10000, help="0: no small-tensor rows")
    parser.add_argument("--isas", nargs="+", default=_C.supported_isas(), choices=_C.supported_isas())
    parser.add_argument("--threads", nargs="+", type=int, default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--cpu-time", action="store_true", help="1-thread rows timed in process CPU time")
    args = parser.parse_args()
    os.environ["QUBD_BACKEND"] = "native"
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__};"
          f" instruction sets {_C.supported_isas()}; {args.side}x{args.side}, 8 planes")  # fmt: skip
    large(args.side, args.repeats, args.isas, args.threads, args.cpu_time)
    if args.small:
        small(args.small)


if __name__ == "__main__":
    main()
