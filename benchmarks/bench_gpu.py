"""GPU throughput of ``qubd.ops.qubd`` against the device's copy bandwidth.

One run measures:

* device-to-device copy bandwidth (``dst.copy_(src)`` of a large buffer; bytes read + written per s);
* ``qubd.ops.qubd(w, 8, clip)`` for clip None and 99.9, bf16 and fp32 weights, 16M .. 2B elements
  (as many as fit in memory): weights/s, the weights' bytes read per s, and that as a fraction of
  the copy bandwidth. A fraction of 50% means scoring a tensor takes as long as copying it once;
  the stages (range, histograms) are timed too;
* the time to score a Llama-7B-like set of bf16 tensors already on the GPU (clip None and 99.9).

Results go to ``<out>.md`` (tables) and ``<out>.json``. Usage::

    python benchmarks/bench_gpu.py --out results/bench_h100
    python benchmarks/bench_gpu.py --out results/quick --max-elements 300e6 --skip-7b
    QUBD_BACKEND=triton python benchmarks/bench_gpu.py --out results/triton --tune
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

SIZES = [16 << 20, 64 << 20, 256 << 20, 1 << 30, 2 << 30]
COLS = 4096
CLIPS = [None, 99.9]
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
BITS = 8

# Llama-7B: vocab 32000, hidden 4096, MLP 11008, 32 layers; 1-D norm weights are not scored.
LLAMA_7B = (
    [("embed_tokens", (32000, 4096))]
    + [
        (f"layers.{i}.{name}", shape)
        for i in range(32)
        for name, shape in (
            ("q_proj", (4096, 4096)),
            ("k_proj", (4096, 4096)),
            ("v_proj", (4096, 4096)),
            ("o_proj", (4096, 4096)),
            ("gate_proj", (11008, 4096)),
            ("up_proj", (11008, 4096)),
            ("down_proj", (4096, 11008)),
        )
    ]
    + [("lm_head", (32000, 4096))]
)


def llm_like(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """N(0, 0.02) weights with 0.01% outliers of magnitude ~1, as in trained LLMs: the outliers set
    the min/max range, so the high bit-planes are nearly constant (the hot codes 0x0000/0xFFFF)."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    w = torch.empty(shape, dtype=dtype, device="cuda")
    flat = w.view(-1)
    for chunk in flat.split(1 << 28):  # no full-size float32 temporary for bf16
        chunk.copy_(torch.randn(chunk.numel(), generator=g, device="cuda").mul_(0.02))
    n_out = max(2, flat.numel() // 10_000)
    idx = torch.randint(0, flat.numel(), (n_out,), generator=g, device="cuda")
    flat[idx] = (torch.rand(n_out, generator=g, device="cuda") + 0.5).to(dtype) * torch.where(
        torch.arange(n_out, device="cuda") % 2 == 0, 1.0, -1.0
    ).to(dtype)
    return w


def cuda_time(fn, repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` (CUDA events around each call; the first calls compile kernels)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def copy_bandwidth(n_bytes: int, repeats: int) -> dict:
    src = torch.empty(n_bytes, dtype=torch.uint8, device="cuda")
    src.random_(0, 255)
    dst = torch.empty_like(src)
    seconds = cuda_time(lambda: dst.copy_(src), repeats)
    return {"bytes": n_bytes, "seconds": seconds, "bytes_per_s": 2 * n_bytes / seconds}


def free_bytes() -> int:
    torch.cuda.empty_cache()
    return torch.cuda.mem_get_info()[0]


def bench_sizes(args, copy_bw: float) -> list[dict]:
    import qubd
    from qubd.range import quant_grid, value_range

    rows = []
    for (dname, dtype), n in itertools.product(DTYPES.items(), SIZES):
        if n > args.max_elements:
            continue
        elem = torch.empty((), dtype=dtype).element_size()
        # Weights + radix-select buffers (<= n/16 keys) + histogram copies, with room to spare.
        if n * elem * 1.3 + (1 << 30) > free_bytes():
            print(f"skip {dname} {n / 1e6:.0f}M: not enough free GPU memory", flush=True)
            continue
        w = llm_like((n // COLS, COLS), dtype, seed=n)
        repeats = args.repeats if n <= (256 << 20) else max(3, args.repeats // 3)
        for clip in CLIPS:
            seconds = cuda_time(lambda w=w, clip=clip: qubd.ops.qubd(w, BITS, clip), repeats)
            range_s = cuda_time(
                lambda w=w, clip=clip: value_range(w, clip, torch.ops.qubd.order_statistics), repeats
            )
            grid = quant_grid(*value_range(w, clip, torch.ops.qubd.order_statistics), BITS)
            hist_s = cuda_time(
                lambda w=w, grid=grid: torch.ops.qubd.weight_histograms(w, grid.lo, grid.delta, BITS), repeats
            )
            read_bw = n * elem / seconds
            row = {
                "dtype": dname,
                "elements": n,
                "clip": clip,
                "seconds": seconds,
                "weights_per_s": n / seconds,
                "read_bytes_per_s": read_bw,
                "fraction_of_copy_bw": read_bw / copy_bw,
                "range_seconds": range_s,
                "histogram_seconds": hist_s,
            }
            rows.append(row)
            print(
                f"{dname} {n / 2**20:6.0f}Mi clip={clip!s:5}: {seconds * 1e3:8.2f} ms  "
                f"{n / seconds / 1e9:7.1f} Gw/s  {100 * row['fraction_of_copy_bw']:5.1f}% of copy bw  "
                f"(range {range_s * 1e3:.2f} ms, histograms {hist_s * 1e3:.2f} ms)",
                flush=True,
            )
        del w
    return rows


def score_all(tensors: list[torch.Tensor], clip: float | None) -> torch.Tensor:
    """Per-plane QuBD summed over the tensors (each scored on its own), left on the GPU."""
    import qubd

    return torch.stack([qubd.ops.qubd(t, BITS, clip) for t in tensors]).sum(0)


def score_batched(tensors: list[torch.Tensor], clip: float | None) -> torch.Tensor:
    """The same sum through ops.qubd_batched (one histogram launch for the small tensors)."""
    import qubd

    return qubd.ops.qubd_batched(tensors, BITS, clip).sum(0)


def bench_7b(args) -> list[dict]:
    tensors = [llm_like(shape, torch.bfloat16, seed=i) for i, (_, shape) in enumerate(LLAMA_7B)]
    n = sum(t.numel() for t in tensors)
    methods = {"ops.qubd per tensor": score_all, "ops.qubd_batched": score_batched}
    rows = []
    for (method, fn), clip in itertools.product(methods.items(), CLIPS):
        scores = fn(tensors, clip)  # compile
        torch.cuda.synchronize()
        times = []
        for _ in range(max(1, args.repeats_7b)):
            start = time.perf_counter()
            fn(tensors, clip)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        rows.append(
            {"method": method, "tensors": len(tensors), "parameters": n, "clip": clip, "seconds": seconds,
             "weights_per_s": n / seconds, "total_qubd": float(scores.sum())}
        )  # fmt: skip
        print(
            f"7B set ({len(tensors)} tensors, {n / 1e9:.2f}B bf16) {method} clip={clip}: {seconds:.3f} s",
            flush=True,
        )
    return rows


def tune(args) -> list[dict]:
    """Sweep the histogram kernel's launch knobs on one bf16 tensor (Triton backend only)."""
    from qubd.backends.triton import _launch, histograms
    from qubd.range import quant_grid, value_range

    n = min(256 << 20, int(args.max_elements))
    w = llm_like((n // COLS, COLS), torch.bfloat16, seed=1)
    grid = quant_grid(*value_range(w, None, torch.ops.qubd.order_statistics), BITS)
    defaults = {
        k: getattr(histograms, k) for k in ("TILE_BLOCKS", "MAX_TILE_BLOCK_COLS", "MAX_COPIES", "NUM_WARPS")
    }
    default_programs = _launch.PROGRAMS_PER_SM
    rows = []
    for tile_blocks, warps, copies, per_sm in itertools.product(
        (256, 512, 1024), (4, 8), (1, 8, 32), (2, 4, 8)
    ):
        histograms.TILE_BLOCKS, histograms.NUM_WARPS, histograms.MAX_COPIES = tile_blocks, warps, copies
        _launch.PROGRAMS_PER_SM = per_sm
        seconds = cuda_time(lambda: histograms.weight_histograms(w, grid.lo, grid.delta, BITS), 5)
        rows.append(
            {"tile_blocks": tile_blocks, "num_warps": warps, "max_copies": copies, "programs_per_sm": per_sm,
             "seconds": seconds, "weights_per_s": n / seconds}
        )  # fmt: skip
        print(f"tune {rows[-1]}", flush=True)
    for k, v in defaults.items():
        setattr(histograms, k, v)
    _launch.PROGRAMS_PER_SM = default_programs
    return sorted(rows, key=lambda r: r["seconds"])


def markdown(report: dict) -> str:
    env, copy = report["environment"], report["copy"]
    lines = [
        f"# qubd GPU benchmark ({env['device']})",
        "",
        f"backend: {env['backend']}; torch {env['torch']}; triton {env['triton']}; date {env['date']}",
        "",
        f"Device-to-device copy: {copy['bytes_per_s'] / 1e9:.0f} GB/s (bytes read + written per s, "
        f"{copy['bytes'] / 2**30:.0f} GiB buffer).",
        "",
        "Fraction = bytes of weights read per second by `ops.qubd` / copy bandwidth (50% = as long as "
        "copying the tensor once).",
        "",
        "| dtype | elements | clip | time (ms) | Gweights/s | read GB/s | fraction of copy bw | range (ms) "
        "| histograms (ms) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["sizes"]:
        lines.append(
            f"| {r['dtype']} | {r['elements'] / 2**20:.0f}Mi | {r['clip']} | {r['seconds'] * 1e3:.2f} "
            f"| {r['weights_per_s'] / 1e9:.1f} | {r['read_bytes_per_s'] / 1e9:.0f} "
            f"| {100 * r['fraction_of_copy_bw']:.1f}% | {r['range_seconds'] * 1e3:.2f} "
            f"| {r['histogram_seconds'] * 1e3:.2f} |"
        )
    if report["llama_7b"]:
        lines += [
            "",
            "| 7B-parameter bf16 set | method | tensors | clip | seconds | Gweights/s |",
            "|---|---|---:|---|---:|---:|",
        ]
        for r in report["llama_7b"]:
            lines.append(
                f"| {r['parameters'] / 1e9:.2f}B | {r['method']} | {r['tensors']} | {r['clip']} "
                f"| {r['seconds']:.3f} | {r['weights_per_s'] / 1e9:.1f} |"
            )
    if report["tune"]:
        lines += [
            "",
            "Histogram kernel launch sweep (bf16, fastest first):",
            "",
            "| tile blocks | warps | max copies | programs/SM | ms | Gweights/s |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r in report["tune"][:12]:
            lines.append(
                f"| {r['tile_blocks']} | {r['num_warps']} | {r['max_copies']} | {r['programs_per_sm']} "
                f"| {r['seconds'] * 1e3:.2f} | {r['weights_per_s'] / 1e9:.1f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="writes OUT.md and OUT.json")
    parser.add_argument(
        "--max-elements", type=float, default=float(2 << 30), help="largest tensor (elements)"
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--repeats-7b", type=int, default=3)
    parser.add_argument("--skip-7b", action="store_true")
    parser.add_argument("--tune", action="store_true", help="also sweep the Triton histogram kernel's knobs")
    parser.add_argument("--tune-only", action="store_true", help="only the sweep (with the copy bandwidth)")
    args = parser.parse_args()

    if not torch.cuda.is_available():
        sys.exit(
            "bench_gpu.py needs a CUDA device, and torch.cuda.is_available() is False: nothing to measure."
        )
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        sys.exit("unset TRITON_INTERPRET: the benchmark measures compiled kernels")

    import qubd  # noqa: F401  (declares the ops)
    from qubd.ops import dispatch

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    backend = dispatch.routed("cuda")
    report = {
        "environment": {
            "device": torch.cuda.get_device_name(),
            "backend": backend,
            "torch": torch.__version__,
            "triton": triton_version,
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        },
        "copy": None,
        "sizes": [],
        "llama_7b": [],
        "tune": [],
    }

    def save() -> None:  # after every phase, so that a run cut short still leaves its numbers
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(markdown(report))

    copy_bytes = min(4 << 30, int(free_bytes() * 0.4))
    report["copy"] = copy_bandwidth(copy_bytes, args.repeats)
    print(f"device-to-device copy: {report['copy']['bytes_per_s'] / 1e9:.0f} GB/s (read + write)", flush=True)
    save()
    if not args.tune_only:
        report["sizes"] = bench_sizes(args, report["copy"]["bytes_per_s"])
        save()
    if not (args.skip_7b or args.tune_only):
        needed = sum(math.prod(shape) for _, shape in LLAMA_7B) * 2
        if needed * 1.2 + (2 << 30) < free_bytes():
            report["llama_7b"] = bench_7b(args)
            save()
        else:
            print("skip the 7B set: not enough free GPU memory", flush=True)
    if args.tune or args.tune_only:
        report["tune"] = tune(args)
        save()
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
