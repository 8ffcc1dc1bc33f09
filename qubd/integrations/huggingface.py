"""``QubdTrainerCallback``: per-plane QuBD of a ``transformers.Trainer``'s model during training."""

from __future__ import annotations

from transformers import TrainerCallback

from qubd.integrations.schedule import ScheduledCallback


class QubdTrainerCallback(ScheduledCallback, TrainerCallback):
    """Scores the model at step 0 and every ``every`` optimizer steps (``state.global_step``), on the
    main process only; keeps the reports in ``.tracker`` (a ``ComplexityTracker``), writes its JSON log
    to ``path`` and logs the per-plane ratios to TensorBoard (``tensorboard``: a log folder or a
    ``SummaryWriter``) and to the active W&B run (``wandb``: None = when one is active).

    ``options`` are ``ComplexityTracker``'s: ``bits``, ``clip``, ``baseline``, ``seed``, ``repeats``,
    ``include``, ``exclude``, ``device``.
    """

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.is_world_process_zero:
            self.schedule.start(model)
            self.schedule.at_step(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.schedule.at_step(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.schedule.close()
