"""Training callbacks with the real frameworks on tiny models: a transformers Trainer and a Lightning
Trainer score the model every N steps; the ratios logged to TensorBoard and W&B (offline) are those of
an independent ``qubd.score`` of the same weights."""

from __future__ import annotations

import copy
import json
import sys

import pytest
import torch
from torch import nn

import qubd

transformers = pytest.importorskip("transformers", reason="transformers comes with the test extra")
pytest.importorskip("accelerate", reason="the Trainer needs accelerate, in the test extra")
pytest.importorskip("tensorboard", reason="tensorboard comes with the test extra")
lightning = pytest.importorskip("lightning", reason="lightning comes with the test extra")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from qubd.integrations import QubdLightningCallback, QubdTrainerCallback  # noqa: E402
from qubd.integrations.sinks import ScalarSinks  # noqa: E402

BITS = 4
OPTIONS = {"bits": BITS, "clip": None}


class TinyRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))

    def forward(self, x, labels=None):
        out = self.net(x)
        return {"loss": nn.functional.mse_loss(out, labels), "logits": out}


def _dataset(n: int = 32) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 8, generator=g)
    y = x[:, :4] * 2
    return [{"x": x[i], "labels": y[i]} for i in range(n)]


def _ratios(model: nn.Module) -> list[float]:
    return [p.ratio for p in qubd.score(model, **OPTIONS).planes]


def _tensorboard_scalars(log_dir) -> dict[str, dict[int, float]]:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def _hf_trainer(model, tmp_path, callback, max_steps: int = 6):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=0.05,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    return transformers.Trainer(model=model, args=args, train_dataset=_dataset(), callbacks=[callback])


def test_trainer_callback_scores_every_n_steps_and_logs_to_tensorboard(tmp_path):
    model = TinyRegressor()
    initial = copy.deepcopy(model)
    callback = QubdTrainerCallback(
        every=3, path=tmp_path / "qubd.json", tensorboard=tmp_path / "tb", **OPTIONS
    )
    _hf_trainer(model, tmp_path, callback).train()

    log = json.loads((tmp_path / "qubd.json").read_text())
    assert [e["step"] for e in log["entries"]] == [0, 3, 6]
    scalars = _tensorboard_scalars(tmp_path / "tb")
    for plane, (before, after) in enumerate(zip(_ratios(initial), _ratios(model), strict=True)):
        logged = scalars[f"qubd/ratio/plane_{plane}"]
        assert sorted(logged) == [0, 3, 6]
        assert logged[0] == pytest.approx(before, rel=1e-6)  # TensorBoard stores float32
        assert logged[6] == pytest.approx(after, rel=1e-6)
    assert _ratios(initial) != _ratios(model)  # training changed the weights that were scored
    assert "qubd/ratio/total" in scalars and "qubd/qubd/plane_0" in scalars


class TinyLightning(lightning.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = TinyRegressor()

    def training_step(self, batch, batch_idx):
        return self.model(batch["x"], batch["labels"])["loss"]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_lightning_callback_logs_through_the_trainers_tensorboard_logger(tmp_path):
    module = TinyLightning()
    initial = copy.deepcopy(module)
    logger = lightning.pytorch.loggers.TensorBoardLogger(str(tmp_path), name="tb", version=0)
    callback = QubdLightningCallback(every=2, path=tmp_path / "qubd.json", **OPTIONS)
    trainer = lightning.Trainer(
        max_steps=4,
        accelerator="cpu",
        logger=logger,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        accumulate_grad_batches=2,  # two batch-end calls per optimizer step: each step scored once
    )
    loader = torch.utils.data.DataLoader(_dataset(), batch_size=4)
    trainer.fit(module, loader)

    assert [e["step"] for e in callback.tracker.entries] == [0, 2, 4]
    logger.experiment.flush()
    scalars = _tensorboard_scalars(logger.log_dir)
    for plane, (before, after) in enumerate(zip(_ratios(initial), _ratios(module), strict=True)):
        logged = scalars[f"qubd/ratio/plane_{plane}"]
        assert sorted(logged) == [0, 2, 4]
        assert logged[0] == pytest.approx(before, rel=1e-6)
        assert logged[4] == pytest.approx(after, rel=1e-6)


def test_trainer_callback_logs_to_the_active_wandb_run_offline(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", reason="wandb comes with the test extra")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    model = TinyRegressor()
    run = wandb.init(project="qubd-test", dir=str(tmp_path), mode="offline")
    try:
        _hf_trainer(model, tmp_path, QubdTrainerCallback(every=2, **OPTIONS), max_steps=4).train()
        summary = {k: run.summary[k] for k in run.summary.keys()}
    finally:
        wandb.finish()
    for plane, ratio in enumerate(_ratios(model)):
        assert summary[f"qubd/ratio/plane_{plane}"] == pytest.approx(ratio, rel=1e-12)
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))  # written under tmp_path


def test_wandb_true_without_a_run_is_a_clear_error(monkeypatch):
    wandb = pytest.importorskip("wandb", reason="wandb comes with the test extra")
    monkeypatch.setattr(wandb, "run", None)
    sinks = ScalarSinks(wandb=True)
    with pytest.raises(RuntimeError, match=r"no W&B run is active: call wandb.init\(\)"):
        sinks.log({"qubd/ratio/total": 99.0}, step=1)


def test_missing_optional_packages_are_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install 'qubd\[tensorboard\]'"):
        ScalarSinks(tensorboard=tmp_path / "tb")
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install 'qubd\[wandb\]'"):
        ScalarSinks(wandb=True)
    ScalarSinks(wandb=None).log({"x": 1.0}, step=0)  # auto: no wandb, nothing logged, no error


def test_bad_every():
    with pytest.raises(ValueError, match="every must be a positive integer"):
        QubdTrainerCallback(every=0)
