"""``QubdTrainerCallback``: per-plane QuBD of a ``transformers.Trainer``'s model during training."""

from __future__ import annotations

from transformers import TrainerCallback

from qubd.integrations.schedule import ScheduledCallback


class QubdTrainerCallback(ScheduledCallback, TrainerCallback):
    """Scores the model at step 0 and every ``every`` optimizer steps (``state.global_step``), on the
    main process, or on every rank when the model's weights are sharded DTensors (FSDP2, tensor
    parallel: the ranks score it together); keeps the reports in ``.tracker`` (a
    ``ComplexityTracker``), writes its JSON log to ``path`` (rank 0) and, on the main process, logs
    the per-plane ratios to TensorBoard (``tensorboard``: a log folder or a ``SummaryWriter``) and to
    the active W&B run (``wandb``: None = when one is active).

    ``options`` are ``ComplexityTracker``'s: ``bits``, ``clip``, ``baseline``, ``seed``, ``repeats``,
    ``include``, ``exclude``, ``device``.
    """

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.schedule.start(model, state.is_world_process_zero)
        self.schedule.at_step(state.global_step, state.is_world_process_zero)

    def on_step_end(self, args, state, control, **kwargs):
        self.schedule.at_step(state.global_step, state.is_world_process_zero)

    def on_train_end(self, args, state, control, **kwargs):
        self.schedule.close()
