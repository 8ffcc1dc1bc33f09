"""A report as scalars (per-plane ratio and QuBD, totals, suggested bits), and where they are logged:
TensorBoard (a ``SummaryWriter``) and the active Weights & Biases run."""

from __future__ import annotations

import os
from typing import Any

from qubd.report.report import Report

PREFIX = "qubd"


def report_scalars(report: Report, prefix: str = PREFIX) -> dict[str, float]:
    """``{prefix}/ratio/plane_{i}`` (percent of the baseline; plane 0 the least significant),
    ``{prefix}/qubd/plane_{i}`` (bits), the same for ``total``, and ``{prefix}/suggested_bits``."""
    scalars = {}
    for p in report.planes:
        if p.ratio is not None:
            scalars[f"{prefix}/ratio/plane_{p.plane}"] = p.ratio
        scalars[f"{prefix}/qubd/plane_{p.plane}"] = p.bdm
    total = report.total
    if total.ratio is not None:
        scalars[f"{prefix}/ratio/total"] = total.ratio
    scalars[f"{prefix}/qubd/total"] = total.bdm
    advice = report.advice
    if advice is not None and advice.suggested_bits is not None:
        scalars[f"{prefix}/suggested_bits"] = float(advice.suggested_bits)
    return scalars


def _summary_writer(log_dir: str | os.PathLike):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ImportError(
            "logging to TensorBoard needs the tensorboard package: pip install 'qubd[tensorboard]'"
        ) from None
    return SummaryWriter(log_dir=os.fspath(log_dir))


def _wandb_module():
    try:
        import wandb
    except ImportError:
        raise ImportError("wandb=True needs the wandb package: pip install 'qubd[wandb]'") from None
    return wandb


def _wandb_run(wandb: bool | None):
    """The active W&B run to log to: with ``wandb=None``, the active one if wandb is installed and a run
    is started (else None); ``True`` requires one; ``False``, none."""
    if wandb is False:
        return None
    try:
        wandb_module = _wandb_module()
    except ImportError:
        if wandb:
            raise
        return None
    if wandb and wandb_module.run is None:
        raise RuntimeError("wandb=True but no W&B run is active: call wandb.init() before training")
    return wandb_module.run


class ScalarSinks:
    """TensorBoard, given a log folder (a ``SummaryWriter`` is opened on it) or a ``SummaryWriter``; and
    W&B, looked up at each log (a run the framework starts after this object is made is found)."""

    def __init__(self, tensorboard: str | os.PathLike | Any | None = None, wandb: bool | None = None):
        if isinstance(tensorboard, (str, os.PathLike)):
            self.writer, self._owns_writer = _summary_writer(tensorboard), True
        else:
            self.writer, self._owns_writer = tensorboard, False
        self.wandb = wandb
        if wandb:
            _wandb_module()  # a missing package is an error now, not mid-training

    def log(self, scalars: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for tag, value in scalars.items():
                self.writer.add_scalar(tag, value, global_step=step)
            self.writer.flush()
        run = _wandb_run(self.wandb)
        if run is not None:
            run.log(scalars, step=step, commit=True)  # written now, not when a later step arrives

    def close(self) -> None:
        if self._owns_writer:
            self.writer.close()
