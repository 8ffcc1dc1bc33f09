"""What each process of the multi-process tests runs (spawned with gloo on CPU). Nothing here
asserts: results go back to the test, which compares them with single-process computations."""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from queue import Empty

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import qubd
from qubd.report.errors import ReportError

CONFIGS = [(None, 1), (None, 8), (99.9, 1), (99.9, 8)]


class Block(nn.Module):
    """A transformer block's weight shapes, row counts not multiples of 4 x world size."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.up = nn.Linear(width, hidden)
        self.down = nn.Linear(hidden, width)


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int = 53, width: int = 38, hidden: int = 101, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.blocks = nn.ModuleList(Block(width, hidden) for _ in range(layers))
        self.head = nn.Linear(width, vocab)
        self.constant = nn.Linear(9, 7)


def transformer(seed: int = 0) -> TinyTransformer:
    torch.manual_seed(seed)
    model = TinyTransformer()
    with torch.no_grad():  # heavy tails, so that 99.9 clipping cuts values off
        model.blocks[0].up.weight[3, 5] = 40.0
        model.constant.weight.fill_(0.25)  # a tensor with a range note
    return model


def report_dict(report: qubd.Report) -> dict:
    """A report's JSON, less what depends on the run (timing) or on the wrapper (the source)."""
    drop = ("seconds", "weights_per_second", "source")
    return {k: v for k, v in json.loads(report.to_json()).items() if k not in drop}


ORDER_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def order_statistics_inputs(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Values to select from, shuffled: a mixed bag (signed zeros, repeats), a few tied values only,
    and the dtype's largest finite values of both signs with subnormals among ordinary ones."""
    torch.manual_seed(1)
    info = torch.finfo(dtype)
    f64 = torch.float64
    mixed = torch.cat([torch.randn(601), torch.zeros(7), -torch.zeros(7), torch.full((9,), 0.5)])
    ties = torch.tensor([-1.0, -0.0, 0.0, 1.0, 2.0]).repeat(50)
    rare = [info.max, -info.max, info.max, info.smallest_normal / 4, -info.smallest_normal / 4, -info.max]
    extremes = torch.cat([torch.randn(200, dtype=f64), torch.tensor(rare, dtype=f64)])
    inputs = {"mixed": mixed, "ties": ties, "extremes": extremes}
    return {name: v[torch.randperm(v.numel())].to(dtype) for name, v in inputs.items()}


def order_statistics_ranks(n: int) -> list[int]:
    return [0, 1, 2, n // 3, n // 2, n - 2, n - 1]


def uneven_sizes(n: int, world: int) -> list[int]:
    """Shard sizes with an empty and a one-element shard among them."""
    sizes = [0, 1] + [0] * (world - 2)
    sizes[-1] = n - sum(sizes[:-1])
    return sizes if world > 2 else [1, n - 1]


def shard_sizes(n: int, world: int) -> dict[str, list[int]]:
    """Even shards, uneven ones, and every value on the last rank (the others empty)."""
    even = [len(part) for part in torch.arange(n).tensor_split(world)]
    return {"even": even, "uneven": uneven_sizes(n, world), "one rank": [0] * (world - 1) + [n]}


def check_order_statistics(rank: int, world: int, tmp: str) -> dict:
    from qubd.distributed import order_statistics

    results = {}
    for dtype in ORDER_DTYPES:
        for name, full in order_statistics_inputs(dtype).items():
            ranks = order_statistics_ranks(full.numel())
            for split, sizes in shard_sizes(full.numel(), world).items():
                results[f"{name}-{dtype}-{split}"] = order_statistics(full.split(sizes)[rank], ranks)
    return results


def check_halo(rank: int, world: int, tmp: str) -> dict:
    from qubd.distributed.halo import ShardLayout, owned_blocks
    from qubd.reference.blocks import plane_histograms

    torch.manual_seed(2)
    codes = torch.randint(0, 256, (23, 30), dtype=torch.uint8)
    results, received = {}, 0
    for dim in (0, 1):
        length = codes.shape[dim]
        for name, sizes in (("even", None), ("uneven", uneven_sizes(length, world))):
            if sizes is None:
                sizes = [len(c) for c in torch.arange(length).tensor_split(world)]
            starts = [sum(sizes[:r]) for r in range(world)]
            local = codes.narrow(dim, starts[rank], sizes[rank])
            layout = ShardLayout(dim, length, tuple(starts), tuple(sizes))
            blocks = owned_blocks(local, layout)
            own_start, own_end = layout.owned(rank)
            received = max(received, own_end - max(own_start, starts[rank] + sizes[rank]))
            hist = (
                plane_histograms(blocks, 8)
                if min(blocks.shape) >= 4
                else torch.zeros(8, 65536, dtype=torch.int64)
            )
            dist.all_reduce(hist)
            results[f"{dim}-{name}"] = hist
    return {"histograms": results, "most_rows_received": received}


def wide_transformer() -> TinyTransformer:
    """Ranges float32 cannot span: rows of +-3e38 (kept by 99.9 clipping too) in one tensor, and one
    +-3.3e38 pair (clipped off at 99.9) in another."""
    model = transformer()
    with torch.no_grad():
        model.blocks[1].up.weight[0] = 3e38
        model.blocks[1].up.weight[1] = -3e38
        model.blocks[0].down.weight[2, 3] = -3.3e38
        model.blocks[0].down.weight[5, 7] = 3.3e38
    return model


def _fsdp_model(model: nn.Module | None = None) -> nn.Module:
    from torch.distributed.fsdp import fully_shard

    model = transformer() if model is None else model
    for block in model.blocks:
        fully_shard(block)
    fully_shard(model)
    return model


def fsdp_configs(world: int) -> list:
    """Every (clip, bits) with 2 processes; two of them with 3 (the test stays short)."""
    return CONFIGS if world == 2 else CONFIGS[1:3]


def check_fsdp(rank: int, world: int, tmp: str) -> dict:
    """Scores with the default ("expected") baseline, and with none (planes only)."""
    model = _fsdp_model()
    results = {}
    for clip, bits in fsdp_configs(world):
        results[f"{clip}-{bits}"] = report_dict(qubd.score(model, bits=bits, clip=clip))
    report = qubd.score(model, bits=8, clip=None, baseline="none")
    results["none"] = {t.name: t.planes for t in report.tensors}
    tracker = qubd.ComplexityTracker(model, os.path.join(tmp, "log.json"), clip=99.9)
    tracker.log(0)
    results["tracker"] = tracker.entries[0]
    return results


def check_wide(rank: int, world: int, tmp: str) -> dict:
    model = _fsdp_model(wide_transformer())
    return {str(clip): report_dict(qubd.score(model, bits=8, clip=clip)) for clip in (None, 99.9)}


def check_trainer_callback(rank: int, world: int, tmp: str) -> dict:
    """The Hugging Face callback's hooks as the Trainer calls them on each rank, on an FSDP2 model."""
    from transformers import TrainerState

    from qubd.integrations import QubdTrainerCallback

    callback = QubdTrainerCallback(every=2, path=os.path.join(tmp, "callback.json"), clip=99.9)
    state = TrainerState(is_world_process_zero=rank == 0)
    callback.on_train_begin(None, state, None, model=_fsdp_model())
    for step in (1, 2, 3):
        state.global_step = step
        callback.on_step_end(None, state, None)
    return {"entries": callback.tracker.entries}


def check_shard1(rank: int, world: int, tmp: str) -> dict:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    model = transformer()
    mesh = init_device_mesh("cpu", (world,))
    for layer in (model.blocks[0].up, model.blocks[1].down, model.head):
        layer.weight = nn.Parameter(distribute_tensor(layer.weight.detach(), mesh, [Shard(1)]))
    return {f"{bits}": report_dict(qubd.score(model, bits=bits, clip=99.9)) for bits in (1, 8)}


def check_ddp(rank: int, world: int, tmp: str) -> dict:
    model = nn.parallel.DistributedDataParallel(transformer())
    shuffle = qubd.score(model, bits=8, clip=99.9, baseline="shuffle", repeats=2)
    return {
        "source": shuffle.source,
        "shuffle": report_dict(shuffle),
        "expected": report_dict(qubd.score(model)),
    }


def _cli(rank: int, world: int, *argv: str) -> dict:
    """``qubd score`` in every rank, with the environment torchrun gives it."""
    import contextlib
    import io

    from qubd.cli import main

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            status = main(["score", *argv, "--quiet"])
        except SystemExit as exit_:
            status = exit_.code
    return {"status": status, "stderr": stderr.getvalue()}


def check_cli(rank: int, world: int, tmp: str) -> dict:
    return _cli(
        rank, world, os.path.join(tmp, "model.safetensors"), "--json", os.path.join(tmp, "multi.json")
    )


def check_cli_reference(rank: int, world: int, tmp: str) -> dict:
    checkpoint = os.path.join(tmp, "model.safetensors")
    return _cli(rank, world, checkpoint, "--reference", checkpoint, "--json", os.path.join(tmp, "ref.json"))


def check_cli_fault(rank: int, world: int, tmp: str) -> dict:
    """A checkpoint one of whose tensors (scored by one rank) holds a NaN."""
    return _cli(rank, world, os.path.join(tmp, "bad.safetensors"), "--json", os.path.join(tmp, "out.json"))


def check_cli_unexpected(rank: int, world: int, tmp: str) -> dict:
    """An error that is not qubd's own (here a RuntimeError in every rank's scoring call)."""
    from unittest import mock

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    with mock.patch("qubd.distributed.launch.score_checkpoint", broken):
        return _cli(rank, world, os.path.join(tmp, "model.safetensors"))


def _error(run) -> str | None:
    try:
        run()
    except ReportError as err:
        return str(err)
    return None


def check_faults(rank: int, world: int, tmp: str) -> dict:
    model = _fsdp_model()
    results = {
        "options": _error(lambda: qubd.score(model, bits=8 if rank == 0 else 4, baseline="none")),
        "shuffle": _error(lambda: qubd.score(model, baseline="shuffle")),
        "reinit": _error(lambda: qubd.score(model, baseline="reinit")),
        "reference": _error(lambda: qubd.score(model, reference=transformer())),
    }
    local = model.blocks[1].up.weight.to_local()
    if rank == world - 1:
        with torch.no_grad():
            local[-1, 0] = float("nan")
    results["nonfinite"] = _error(lambda: qubd.score(model, baseline="none"))
    return results


CHECKS = {
    "order_statistics": check_order_statistics,
    "halo": check_halo,
    "fsdp": check_fsdp,
    "shard1": check_shard1,
    "wide": check_wide,
    "trainer_callback": check_trainer_callback,
    "ddp": check_ddp,
    "faults": check_faults,
    "cli": check_cli,
    "cli_reference": check_cli_reference,
    "cli_fault": check_cli_fault,
    "cli_unexpected": check_cli_unexpected,
}


def _worker(rank: int, world: int, port: int, checks: list[str], tmp: str, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    results = {}
    try:
        for name in checks:
            try:
                results[name] = _plain(CHECKS[name](rank, world, tmp))
            except Exception:  # noqa: BLE001  (reported to the test, which fails on it)
                results[name] = {"crashed": traceback.format_exc()}
                break
    finally:
        queue.put((rank, results))
        dist.destroy_process_group()


def _plain(obj):
    """Tensors as (dtype name, nested lists): torch's shared-memory tensors would not outlive the process."""
    if isinstance(obj, torch.Tensor):
        return (str(obj.dtype), obj.tolist())
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_world(world: int, checks: list[str], tmp: str, timeout: float = 120) -> list[dict]:
    """Every rank's results of ``checks``, in rank order."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    port = free_port()
    processes = [
        context.Process(target=_worker, args=(r, world, port, checks, tmp, queue)) for r in range(world)
    ]
    for p in processes:
        p.start()
    results = {}
    deadline = time.monotonic() + timeout
    try:
        while len(results) < world and time.monotonic() < deadline:
            try:
                rank, result = queue.get(timeout=1)
                results[rank] = result
            except Empty:
                if all(p.exitcode is not None for p in processes):
                    break
    finally:
        for p in processes:
            p.join(5)
            if p.is_alive():
                p.kill()
    missing = sorted(set(range(world)) - set(results))
    if missing:
        raise RuntimeError(f"ranks {missing} returned nothing (exit codes {[p.exitcode for p in processes]})")
    return [results[r] for r in range(world)]
