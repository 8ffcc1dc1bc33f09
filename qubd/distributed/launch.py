"""``torchrun ... -m qubd score CKPT``: one checkpoint scored by every process torchrun started.

The process group comes from torchrun's environment (``env://``: RANK, WORLD_SIZE, MASTER_ADDR,
...), with NCCL for CUDA tensors and gloo for CPU ones; each process uses its local GPU
(LOCAL_RANK) when there is one. The tensors are spread over the ranks by size, each rank reads only
its own, and every rank gets the whole Report; only rank 0 writes files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager

import torch
import torch.distributed as dist

from qubd.checkpoints import Scorable, open_source
from qubd.distributed.collectives import all_or_none
from qubd.distributed.scoring import score_distributed
from qubd.report.options import ScoreOptions
from qubd.report.report import Report


@contextmanager
def process_group() -> Iterator[None]:
    """The default process group from the environment, unless one exists already (then it is left as
    it is); NCCL for CUDA tensors when there is a GPU, gloo for CPU tensors."""
    if dist.is_initialized():
        yield
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def score_checkpoint(
    paths: Scorable,
    options: ScoreOptions,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> Report:
    """The Report of checkpoint ``paths``, scored by every rank together (every rank calls this)."""
    with process_group(), ExitStack() as files:
        source = None
        with all_or_none():
            source = files.enter_context(open_source(paths, include, exclude))
        return score_distributed(source, options)
