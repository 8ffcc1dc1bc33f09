"""Scoring on torch.distributed: models sharded over ranks (FSDP2, tensor parallel) or replicated
(DDP), and checkpoints scored by many processes (``torchrun -m qubd score``), each bit for bit equal
to one process's score. Collectives only through torch.distributed (NCCL on GPUs, gloo on CPUs)."""

from qubd.distributed.order_statistics import global_range, order_statistics
from qubd.distributed.scoring import balance, is_distributed_model, score_distributed, score_model

__all__ = [
    "balance",
    "global_range",
    "is_distributed_model",
    "order_statistics",
    "score_distributed",
    "score_model",
]
