"""Which processes the training callbacks score on: the main one, and every rank when the model is
one every rank scores together (DTensor weights: FSDP2, tensor parallel). Here in one process, with
that test of the model replaced; tests/test_distributed.py runs the Hugging Face callback on a real
FSDP2 model over 2 gloo processes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from torch import nn

from qubd.integrations import schedule

transformers = pytest.importorskip("transformers", reason="transformers comes with the test extra")
lightning = pytest.importorskip("lightning", reason="lightning comes with the test extra")

from qubd.integrations import QubdLightningCallback, QubdTrainerCallback  # noqa: E402


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 8))


class _Logger:
    def __init__(self):
        self.logged = []

    def log_metrics(self, metrics, step):
        self.logged.append(step)


@pytest.mark.parametrize("every_rank", [False, True])
def test_lightning_callback_off_rank_zero_scores_only_a_model_every_rank_scores(
    monkeypatch, tmp_path, every_rank
):
    monkeypatch.setattr(schedule, "scored_by_every_rank", lambda model: every_rank)
    logger = _Logger()
    callback = QubdLightningCallback(every=2, path=tmp_path / "log.json", tensorboard=tmp_path / "tb")
    trainer = SimpleNamespace(is_global_zero=False, global_step=0, loggers=[logger])
    callback.on_train_start(trainer, _model())
    for step in (1, 2):
        trainer.global_step = step
        callback.on_train_batch_end(trainer, None, None, None, step)
    assert [e["step"] for e in callback.tracker.entries] == ([0, 2] if every_rank else [])
    assert logger.logged == []  # the scalars are logged by rank 0 only
    assert not (tmp_path / "log.json").exists()  # and the log written by rank 0 only


@pytest.mark.parametrize("every_rank", [False, True])
def test_trainer_callback_off_the_main_process_scores_only_a_model_every_rank_scores(monkeypatch, every_rank):
    monkeypatch.setattr(schedule, "scored_by_every_rank", lambda model: every_rank)
    callback = QubdTrainerCallback(every=1)
    state = transformers.TrainerState(is_world_process_zero=False)
    callback.on_train_begin(None, state, None, model=_model())
    assert [e["step"] for e in callback.tracker.entries] == ([0] if every_rank else [])
