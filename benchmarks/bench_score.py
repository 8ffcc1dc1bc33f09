"""Time ``qubd.score`` on a checkpoint and measure its memory: weights/s, peak resident memory.

    python benchmarks/bench_score.py /path/to/model_dir --baseline shuffle
    python benchmarks/bench_score.py /path/to/model_dir --baseline reference --reference /path/to/step0
    python benchmarks/bench_score.py --generate-layers 8   # a temporary ~3.7 GB Llama-like checkpoint

Prints a Markdown table row for benchmarks/RESULTS.md. Peak memory is reported twice: the peak
resident set (VmHWM, which includes memory-mapped checkpoint pages, reclaimable by the kernel) and the
peak anonymous memory (RssAnon sampled every 20 ms: the tensors qubd allocates itself).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qubd.ops import dispatch  # noqa: E402
from qubd.report import score  # noqa: E402
from qubd.report.options import BASELINES  # noqa: E402

MAKE_CHECKPOINT = Path(__file__).with_name("make_sharded_checkpoint.py")
SAMPLE_SECONDS = 0.02
GIB = 2**30


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class PeakAnonymousMemory:
    """Samples RssAnon in a thread; ``peak`` in bytes."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_kib("RssAnon") * 1024)
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> PeakAnonymousMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def checkpoint_bytes(path: Path) -> int:
    files = [path] if path.is_file() else [p for p in path.iterdir() if p.suffix == ".safetensors"]
    return sum(p.stat().st_size for p in files)


def bench(path: Path, args: argparse.Namespace) -> dict:
    baseline_anon = _status_kib("RssAnon") * 1024
    with PeakAnonymousMemory() as anon:
        started = time.perf_counter()
        report = score(
            path, bits=args.bits, clip=args.clip, baseline=args.baseline, repeats=args.repeats,
            reference=args.reference, device=args.device, progress=sys.stderr.isatty(),
        )  # fmt: skip
        seconds = time.perf_counter() - started
    largest = max(t.numel * _item_bytes(t.dtype) for t in report.scored)
    device = report.device
    backend = dispatch.routed(torch.device(device).type)
    return {
        "checkpoint_gib": checkpoint_bytes(path) / GIB,
        "tensors": len(report.scored),
        "weights": report.weights,
        "seconds": seconds,
        "weights_per_second": report.weights / seconds,
        "largest_tensor_gib": largest / GIB,
        "peak_rss_gib": _status_kib("VmHWM") * 1024 / GIB,
        "peak_anon_gib": anon.peak / GIB,
        "anon_before_gib": baseline_anon / GIB,
        "baseline": args.baseline,
        "repeats": args.repeats,
        "bits": args.bits,
        "clip": args.clip,
        "device": device,
        "backend": backend,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "msb_ratio": report.planes[-1].ratio,
    }


def _item_bytes(dtype: str) -> int:
    return torch.empty((), dtype=getattr(torch, dtype)).element_size()


def markdown_row(r: dict) -> str:
    baseline = r["baseline"] + (f" x{r['repeats']}" if r["baseline"] != "none" else "")
    return (
        f"| {r['checkpoint_gib']:.2f} GiB, {r['tensors']} tensors | {baseline} | "
        f"{r['device']} ({r['backend']}, {r['threads']} threads) | {r['seconds']:.1f} s | "
        f"{r['weights_per_second'] / 1e6:.1f} M | "
        f"{r['largest_tensor_gib']:.2f} GiB | {r['peak_anon_gib']:.2f} GiB | {r['peak_rss_gib']:.2f} GiB |"
    )


HEADER = (
    "| checkpoint | baseline | device | time | weights/s | largest tensor | peak anon. memory | peak RSS |\n"
    "|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, help="checkpoint to score (else one is generated)")
    parser.add_argument("--generate-layers", type=int, default=8, help="layers of the generated checkpoint")
    parser.add_argument("--preset", default="llama-7b", help="shapes of the generated checkpoint")
    parser.add_argument("--workdir", type=Path, default=None, help="where to generate (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated checkpoint")
    parser.add_argument("--baseline", default="shuffle", choices=BASELINES)
    parser.add_argument("--reference", type=Path, help="reference checkpoint (baseline 'reference')")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--clip", type=float, default=99.9)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--json", type=Path, help="also write the measurements as JSON")
    args = parser.parse_args()

    generated = None
    path = args.path
    if path is None:
        generated = Path(tempfile.mkdtemp(prefix="qubd-bench-", dir=args.workdir))
        path = generated / "checkpoint"
        started = time.perf_counter()
        command = [sys.executable, str(MAKE_CHECKPOINT), str(path), "--preset", args.preset]
        subprocess.run(command + ["--layers", str(args.generate_layers)], check=True, stdout=sys.stderr)
        print(f"generated {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    try:
        result = bench(path, args)
    finally:
        if generated is not None and not args.keep:
            shutil.rmtree(generated)
    print(json.dumps(result, indent=2))
    print(HEADER)
    print(markdown_row(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
