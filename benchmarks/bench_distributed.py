"""Multi-process scoring on torch.distributed (gloo on CPU here; NCCL when run on GPUs).

    python benchmarks/bench_distributed.py scaling DIR [--nproc 2]   # qubd score: 1 vs N processes
    python benchmarks/bench_distributed.py tracking [--nproc 2] [--smoke]   # one FSDP2 tracking step: 1 vs N
    python benchmarks/bench_distributed.py bytes [--world 8]         # bytes each rank sends per step
    python benchmarks/bench_distributed.py quantiles [--nproc 2] [--numel 33554432] [--before FILE]

``scaling`` times ``qubd score DIR --baseline none`` in one process and under ``torchrun
--nproc_per_node N`` (each rank a share of the tensors), and checks the two JSON reports are equal.
``tracking`` times ``qubd.score`` of a Llama-shaped model (reduced width) wrapped by FSDP2 on 1 and
N gloo processes. ``bytes`` counts what each rank sends per measured step of a Llama-7B-shaped
FSDP2 model, from the messages ``qubd.distributed`` sends (sizes below). ``quantiles`` times the
exact clip quantiles of one tensor sharded over N gloo processes (``qubd.distributed``'s radix
select) with the native digit counts, with the torch reference's, and, given ``--before FILE`` (a
module with the same ``order_statistics(local, ranks, group)``, e.g. an older
qubd/distributed/order_statistics.py from git), with that; rounds alternate, best of each; and one
process's native ``order_statistics`` of the whole tensor. Ratios, not seconds, are the result: both
sides run in the same invocation on the same machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from make_sharded_checkpoint import PRESETS, Shape, tensor_shapes  # noqa: E402

from qubd.distributed.order_statistics import DIGIT_BITS, INT32_MAX  # noqa: E402

WANTED_RANKS = 4  # below/above of each clip quantile: at most 4 prefixes after the first digit


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), torch {torch.__version__}"


def _without_timing(path: Path) -> dict:
    report = json.loads(path.read_text())
    return {k: v for k, v in report.items() if k not in ("seconds", "weights_per_second")}


def scaling(directory: str, nproc: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for n in (1, nproc):
            out = Path(tmp) / f"report{n}.json"
            launcher = (
                [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}"]
                if n > 1
                else [sys.executable]
            )
            command = [
                *launcher,
                "-m",
                "qubd",
                "score",
                directory,
                "--baseline",
                "none",
                "--json",
                str(out),
                "--quiet",
            ]
            if n > 1:
                env_n = {**env, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // n))}
            else:
                env_n = env
            started = time.perf_counter()
            subprocess.run(command, check=True, env=env_n, capture_output=True)
            runs[n] = time.perf_counter() - started
            print(f"{n} process(es): {runs[n]:.1f} s", flush=True)
        same = _without_timing(Path(tmp) / "report1.json") == _without_timing(
            Path(tmp) / f"report{nproc}.json"
        )
    print(
        f"| {nproc} vs 1 processes | {runs[1]:.1f} s | {runs[nproc]:.1f} s | {runs[1] / runs[nproc]:.2f}x "
        f"| reports equal: {same} |"
    )
    print(machine())


def llama_like(hidden: int, intermediate: int, layers: int, vocab: int) -> torch.nn.Module:
    from torch import nn

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj = (
                nn.Linear(hidden, hidden, bias=False),
                nn.Linear(hidden, hidden, bias=False),
            )
            self.v_proj, self.o_proj = (
                nn.Linear(hidden, hidden, bias=False),
                nn.Linear(hidden, hidden, bias=False),
            )
            self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
            self.up_proj = nn.Linear(hidden, intermediate, bias=False)
            self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    model = nn.Module()
    model.embed_tokens = nn.Embedding(vocab, hidden)
    model.layers = nn.ModuleList(Layer() for _ in range(layers))
    model.lm_head = nn.Linear(hidden, vocab, bias=False)
    return model


TRACKING_MODEL = {"hidden": 1024, "intermediate": 2752, "layers": 4, "vocab": 8000}
SMOKE_TRACKING_MODEL = {"hidden": 32, "intermediate": 64, "layers": 1, "vocab": 64}  # tracking --smoke


def _tracking_worker(rank: int, world: int, port: int, queue, shape: dict[str, int]) -> None:
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard

    import qubd

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = llama_like(**shape)
    for layer in model.layers:
        fully_shard(layer)
    fully_shard(model)
    qubd.score(model, baseline="none")  # warm-up
    dist.barrier()
    started = time.perf_counter()
    report = qubd.score(model, baseline="none")
    seconds = time.perf_counter() - started
    queue.put((rank, seconds, report.total.bdm))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tracking(nproc: int, shape: dict[str, int]) -> None:
    import torch.multiprocessing as mp

    weights = sum(p.numel() for p in llama_like(**shape).parameters())
    results = {}
    for world in (1, nproc):
        context = mp.get_context("spawn")
        queue = context.Queue()
        port = free_port()
        processes = [
            context.Process(target=_tracking_worker, args=(r, world, port, queue, shape))
            for r in range(world)
        ]
        for p in processes:
            p.start()
        got = [queue.get(timeout=1200) for _ in processes]
        for p in processes:
            p.join()
        results[world] = (max(s for _, s, _ in got), {t for _, _, t in got})
        print(
            f"{world} process(es): {results[world][0]:.2f} s per step, totals {results[world][1]}", flush=True
        )
    whole, whole_total = _unsharded_step(shape)
    one, many = results[1][0], results[nproc][0]
    print(
        f"| FSDP2 tracking step, {weights / 1e6:.0f} M weights, clip 99.9, 8 bits "
        f"| {one:.2f} s | {many:.2f} s "
        f"| {one / many:.2f}x | same total: {results[1][1] == results[nproc][1]} |"
    )
    print(
        f"| the same model unsharded, one process | {whole:.2f} s | - "
        f"| sharded on 1 rank: {one / whole:.2f}x the time | same total: {results[1][1] == {whole_total}} |"
    )
    print(machine())


def _unsharded_step(shape: dict[str, int]) -> tuple[float, float]:
    """Seconds of one ``qubd.score`` of the model whole, in this process (after a warm-up), and its total."""
    import qubd

    torch.manual_seed(0)
    model = llama_like(**shape)
    qubd.score(model, baseline="none")
    started = time.perf_counter()
    report = qubd.score(model, baseline="none")
    return time.perf_counter() - started, report.total.bdm


def step_bytes(
    shapes: list[tuple[int, ...]], world: int, bits: int, clip: bool, element_bytes: int
) -> dict[str, float]:
    """Bytes one rank sends per step, by message, for matrices sharded on dim 0 over ``world`` ranks.

    All-reduces are counted as ring all-reduces (each rank sends 2 (W-1)/W of the buffer), the
    histogram reduce as a tree (each rank sends the buffer once, int32 counts), all-gathers as
    (W-1) times the rank's part. The final all-gather of results (JSON, ~25 bytes a plane value) is
    counted per rank's share of tensors."""
    ring = 2 * (world - 1) / world
    sent = {"flags and counts": 0.0, "range": 0.0, "halo rows": 0.0, "histograms": 0.0, "results": 0.0}
    for shape in shapes:
        rows, cols = shape[0], math.prod(shape[1:])
        sent["flags and counts"] += (
            world - 1
        ) * 16 + ring * 8 * 3  # layout all-gather, 2 fail flags, NaN count
        if clip:  # a digit of the stored bits' keys per all-reduce, the first for one prefix
            widths = DIGIT_BITS[element_bytes * 8]
            counts = 2 ** widths[0] + WANTED_RANKS * sum(2**w for w in widths[1:])
            sent["range"] += ring * counts * (4 if rows * cols <= INT32_MAX else 8)
        else:
            sent["range"] += ring * 16
        per_rank = -(-rows // world)
        halo_rows = (-per_rank) % 4  # rows a rank sends back to the block straddling its first row
        sent["halo rows"] += halo_rows * cols * element_bytes
        sent["histograms"] += bits * 65536 * 4
        sent["results"] += (world - 1) * bits * 25 / world
    return sent


def bytes_report(world: int, preset: str) -> None:
    shape = Shape(*PRESETS[preset])
    shapes = [s for _, s in tensor_shapes(shape, 32) if len(s) == 2]
    weights = sum(math.prod(s) for s in shapes)
    print(
        f"{preset}: {len(shapes)} matrices, {weights / 1e9:.2f} G weights "
        f"({weights * 2 / 2**30:.1f} GiB bf16)"
    )
    print("| world | bits | clip | flags | range | halo | histograms | results | total per rank |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for bits in (1, 8):
        for clip in (False, True):
            sent = step_bytes(shapes, world, bits, clip, element_bytes=2)
            cells = " | ".join(f"{v / 2**20:.2f} MiB" for v in sent.values())
            print(
                f"| {world} | {bits} | {'99.9' if clip else 'min/max'} | {cells} "
                f"| {sum(sent.values()) / 2**20:.1f} MiB |"
            )


def _quantiles_worker(rank: int, world: int, port: int, queue, numel: int, rounds: int, before: str | None):
    import functools
    import importlib.util

    import torch.distributed as dist

    from qubd.distributed import order_statistics
    from qubd.ops.dispatch import using
    from qubd.range import _clip_ranks

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    whole = functools.partial(order_statistics, numel=numel)  # int32 counts, as sharded.py sends them
    ways = {"native": whole, "torch reference": whole}
    if before:
        spec = importlib.util.spec_from_file_location("before", before)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ways["before"] = module.order_statistics
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        local = _quantiles_tensor(numel, dtype).tensor_split(world)[rank]
        ranks = _clip_ranks(numel, 99.9, torch.float32).wanted
        best: dict[str, float] = {}
        values = {}
        for _ in range(rounds):
            for name, select in ways.items():
                with using("torch" if name == "torch reference" else None):
                    dist.barrier()
                    started = time.perf_counter()
                    values[name] = select(local, ranks).tolist()
                    seconds = time.perf_counter() - started
                best[name] = min(best.get(name, math.inf), seconds)
        results[str(dtype)] = (best, values)
    queue.put((rank, results))
    dist.destroy_process_group()


def _quantiles_tensor(numel: int, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.randn(numel, generator=g) * 0.02).to(dtype)


def quantiles(nproc: int, numel: int, rounds: int, before: str | None) -> None:
    import torch.multiprocessing as mp

    from qubd.range import _clip_ranks

    context = mp.get_context("spawn")
    queue = context.Queue()
    port = free_port()
    args = (nproc, port, queue, numel, rounds, before)
    processes = [context.Process(target=_quantiles_worker, args=(r, *args)) for r in range(nproc)]
    for p in processes:
        p.start()
    got = dict(queue.get(timeout=1200) for _ in processes)
    for p in processes:
        p.join()
    print(f"| dtype | way | {nproc} ranks (best of {rounds}) | vs native | values as one process |")
    print("|---|---|---:|---:|---|")
    for dtype in (torch.float32, torch.bfloat16):
        full = _quantiles_tensor(numel, dtype)
        ranks = _clip_ranks(numel, 99.9, torch.float32).wanted
        best_one = math.inf
        for _ in range(rounds):
            started = time.perf_counter()
            want = torch.ops.qubd.order_statistics(full, ranks).tolist()
            best_one = min(best_one, time.perf_counter() - started)
        best, values = got[0][str(dtype)]
        for name, seconds in best.items():
            same = all(r[str(dtype)][1][name] == want for r in got.values())
            print(
                f"| {str(dtype).removeprefix('torch.')} | {name} | {seconds * 1e3:.1f} ms "
                f"| {seconds / best['native']:.2f}x | {same} |"
            )
        threads = torch.get_num_threads()
        print(
            f"| {str(dtype).removeprefix('torch.')} | one process, whole tensor, {threads} threads "
            f"| {best_one * 1e3:.1f} ms | {best_one / best['native']:.2f}x | - |"
        )
    print(f"{numel / 1e6:.1f} M values, clip 99.9 ({len(ranks)} ranks); {machine()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("scaling")
    s.add_argument("directory")
    s.add_argument("--nproc", type=int, default=2)
    t = commands.add_parser("tracking")
    t.add_argument("--nproc", type=int, default=2)
    t.add_argument("--smoke", action="store_true", help="a tiny model, seconds long (for the tests)")
    b = commands.add_parser("bytes")
    b.add_argument("--world", type=int, default=8)
    b.add_argument("--preset", default="llama-7b", choices=sorted(PRESETS))
    q = commands.add_parser("quantiles")
    q.add_argument("--nproc", type=int, default=2)
    q.add_argument("--numel", type=int, default=1 << 25)
    q.add_argument("--rounds", type=int, default=3)
    q.add_argument("--before", help="a module file with order_statistics(local, ranks, group) to time too")
    args = parser.parse_args()
    if args.command == "scaling":
        scaling(args.directory, args.nproc)
    elif args.command == "tracking":
        tracking(args.nproc, SMOKE_TRACKING_MODEL if args.smoke else TRACKING_MODEL)
    elif args.command == "quantiles":
        quantiles(args.nproc, args.numel, args.rounds, args.before)
    else:
        bytes_report(args.world, args.preset)


if __name__ == "__main__":
    main()
