"""Complexity during training, in the frameworks people train with: a Hugging Face
``transformers.TrainerCallback`` and a PyTorch Lightning ``Callback`` that run ``ComplexityTracker``
every N steps and log the per-plane ratios to TensorBoard and Weights & Biases.

::

    from qubd.integrations import QubdTrainerCallback, QubdLightningCallback

    trainer = transformers.Trainer(..., callbacks=[QubdTrainerCallback(every=100, tensorboard="runs/qubd")])
    trainer = lightning.Trainer(..., callbacks=[QubdLightningCallback(every=100)])

Each framework is an optional extra (``qubd[hf]``, ``qubd[lightning]``, ``qubd[tensorboard]``,
``qubd[wandb]``); this package imports a framework only when its callback is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qubd.integrations.huggingface import QubdTrainerCallback
    from qubd.integrations.lightning import QubdLightningCallback

_CALLBACKS = {
    "QubdTrainerCallback": "qubd.integrations.huggingface",
    "QubdLightningCallback": "qubd.integrations.lightning",
}
__all__ = ["QubdLightningCallback", "QubdTrainerCallback"]


def __getattr__(name: str):
    if name in _CALLBACKS:
        import importlib

        return getattr(importlib.import_module(_CALLBACKS[name]), name)
    raise AttributeError(f"module 'qubd.integrations' has no attribute {name!r}")
