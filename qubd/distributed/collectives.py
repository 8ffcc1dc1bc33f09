"""The few torch.distributed steps every distributed score is made of: where collectives run, one
error reaching every rank, ranks agreeing on what they score, and exchanging small JSON results.

Nothing here is pickled: objects cross ranks as JSON text in uint8 tensors, compared by digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from qubd.report.errors import ReportError

NO_FAILURE = -1


def comm_device(group: dist.ProcessGroup | None = None) -> torch.device:
    """Where the group's collectives take tensors: the current CUDA device for NCCL, else the CPU."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _int_tensor(values: list[int], group: dist.ProcessGroup | None) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64, device=comm_device(group))


def _broadcast_text(text: str | None, src: int, group: dist.ProcessGroup | None) -> str:
    """``text`` of group rank ``src``, on every rank."""
    data = (text or "").encode()
    length = _int_tensor([len(data)], group)
    dist.broadcast(length, group_src=src, group=group)
    buffer = torch.zeros(int(length.item()), dtype=torch.uint8, device=comm_device(group))
    if dist.get_rank(group) == src:
        buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buffer, group_src=src, group=group)
    return buffer.cpu().numpy().tobytes().decode()


def fail_together(error: BaseException | None, group: dist.ProcessGroup | None = None) -> None:
    """Every rank calls this after a local step, with the exception it raised or None. When any rank
    failed, all raise ReportError with the message of the lowest failing rank (that rank raises it
    ``from`` its own exception), so no rank goes on to a collective the others never reach."""
    rank = dist.get_rank(group)
    failed = _int_tensor([rank if error is not None else dist.get_world_size(group)], group)
    dist.all_reduce(failed, op=dist.ReduceOp.MIN, group=group)
    first = int(failed.item())
    if first == dist.get_world_size(group):
        return
    text = _broadcast_text(_describe(error) if rank == first else None, first, group)
    message = text if dist.get_world_size(group) == 1 else f"rank {first}: {text}"
    raise ReportError(message) from error


def _describe(error: BaseException | None) -> str:
    if isinstance(error, ReportError) or type(error).__name__ == "CheckpointError":
        return str(error)
    return f"{type(error).__name__}: {error}"


@contextmanager
def all_or_none(group: dist.ProcessGroup | None = None) -> Iterator[None]:
    """Run a local step (no collectives inside) on every rank; afterwards either every rank goes on
    or every rank raises the first failing rank's error (``fail_together``)."""
    try:
        yield
    except Exception as err:  # noqa: BLE001  (any failure must reach the other ranks)
        fail_together(err, group)
        raise
    fail_together(None, group)


def digest(obj: object) -> int:
    """A 63-bit digest of a JSON-able object (keys sorted), equal on every rank for equal objects."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def check_agreement(what: str, obj: object, group: dist.ProcessGroup | None = None) -> None:
    """ReportError on every rank unless every rank passed an equal ``obj`` (compared by digest)."""
    mine = _int_tensor([digest(obj)], group)
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size(group))]
    dist.all_gather(everyone, mine, group=group)
    differing = [r for r, d in enumerate(everyone) if not torch.equal(d, everyone[0])]
    if differing:
        raise ReportError(
            f"ranks disagree on {what}: rank {differing[0]} differs from rank 0; every rank must "
            "score the same model or checkpoint with the same options"
        )


def all_gather_json(obj: object, group: dist.ProcessGroup | None = None) -> list:
    """Every rank's ``obj`` (JSON-able; floats round-trip exactly), in rank order, on every rank."""
    data = json.dumps(obj).encode()
    device = comm_device(group)
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    sizes = [torch.empty_like(size) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, size, group=group)
    longest = max(int(s.item()) for s in sizes)
    buffer = torch.zeros(longest, dtype=torch.uint8, device=device)
    buffer[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device) if data else 0
    buffers = [torch.empty_like(buffer) for _ in sizes]
    dist.all_gather(buffers, buffer, group=group)
    return [
        json.loads(b[: int(s.item())].cpu().numpy().tobytes()) for b, s in zip(buffers, sizes, strict=True)
    ]
