"""``QubdLightningCallback``: per-plane QuBD of a LightningModule during ``lightning.Trainer.fit``."""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch import Callback

from qubd.integrations.schedule import ScheduledCallback
from qubd.integrations.sinks import report_scalars


class QubdLightningCallback(ScheduledCallback, Callback):
    """Scores the module at step 0 and every ``every`` optimizer steps (``trainer.global_step``), on
    global rank 0, or on every rank when the module's weights are sharded DTensors (FSDP2, tensor
    parallel: the ranks score it together); keeps the reports in ``.tracker`` (a
    ``ComplexityTracker``), writes its JSON log to ``path`` (rank 0), and, on global rank 0, logs the
    per-plane ratios through the trainer's loggers (TensorBoardLogger,
    WandbLogger, ...: ``use_trainer_loggers``) and to ``tensorboard`` / ``wandb`` as
    ``QubdTrainerCallback`` does.

    ``options`` are ``ComplexityTracker``'s: ``bits``, ``clip``, ``baseline``, ``seed``, ``repeats``,
    ``include``, ``exclude``, ``device``.
    """

    def __init__(
        self,
        every: int = 100,
        path: str | os.PathLike | None = None,
        *,
        use_trainer_loggers: bool = True,
        tensorboard: str | os.PathLike | Any | None = None,
        wandb: bool | None = False,
        **options: Any,
    ):
        super().__init__(every, path, tensorboard=tensorboard, wandb=wandb, **options)
        self.use_trainer_loggers = use_trainer_loggers

    def on_train_start(self, trainer, pl_module) -> None:
        self.schedule.start(pl_module, trainer.is_global_zero)
        self._score(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._score(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self.schedule.close()

    def _score(self, trainer) -> None:
        report = self.schedule.at_step(trainer.global_step, trainer.is_global_zero)
        if report is not None and self.use_trainer_loggers and trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(report_scalars(report), step=trainer.global_step)
