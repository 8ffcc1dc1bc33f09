"""Tensors of a state dict or of whatever ``torch.load`` returned: nested mappings and sequences are
walked, their tensors named by dotted paths.

A training checkpoint often wraps the model's state dict in a key (``{"state_dict": sd, "optimizer":
..., "epoch": 3}``). When exactly one of ``STATE_DICT_KEYS`` holds a mapping, its tensors are named
without that prefix (``w``, not ``state_dict.w``). Nothing is dropped silently:

- tensors under a training-state key at the top level (``optimizer``, ``scheduler``, ``scaler``, ...:
  ``TRAINING_STATE_KEYS``, a mapping or list there, not a bare tensor) are listed but skipped, with the
  reason "optimizer state", never scored;
- every other tensor beside the wrapped state dict (``{"model": sd, "head": {"weight": ...}}``) is
  scored like the state dict's own, under its dotted name (``head.weight``): a checkpoint file is
  scored by all its floating tensors (docs/design.md), the wrapper key only loses its prefix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch

from qubd.checkpoints.entries import TensorEntry, dtype_name, tensor_identity

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module")
# Keys of a training checkpoint whose tensors are training state, not weights.
TRAINING_STATE_KEYS = frozenset(
    {
        "optimizer",
        "optim",
        "optimizer_state_dict",
        "optimizer_states",
        "scheduler",
        "lr_scheduler",
        "lr_schedulers",
        "scheduler_state_dict",
        "scaler",
    }
)
TRAINING_STATE = "optimizer state"


def model_state(obj: object) -> str | None:
    """The key of the model's state dict inside a training checkpoint, or None."""
    if isinstance(obj, Mapping):
        wrapped = [key for key in STATE_DICT_KEYS if isinstance(obj.get(key), Mapping)]
        if len(wrapped) == 1:
            return wrapped[0]
    return None


def named_tensors(obj: object, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """(dotted name, tensor) for every tensor in nested mappings / lists / tuples, in order."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from named_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        for i, value in enumerate(obj):
            yield from named_tensors(value, f"{prefix}.{i}" if prefix else str(i))


def checkpoint_tensors(obj: object) -> Iterator[tuple[str, torch.Tensor, str | None]]:
    """(name, tensor, skip reason or None) for every tensor of a state dict or training checkpoint, in
    order (see the module docstring)."""
    if not isinstance(obj, Mapping):
        for name, tensor in named_tensors(obj):
            yield name, tensor, None
        return
    wrapper = model_state(obj)
    for key, value in obj.items():
        if key == wrapper:
            for name, tensor in named_tensors(value):
                yield name, tensor, None
        elif str(key) in TRAINING_STATE_KEYS and not isinstance(value, torch.Tensor):
            for name, tensor in named_tensors(value, str(key)):
                yield name, tensor, f"{TRAINING_STATE} (under '{key}')"
        else:
            for name, tensor in named_tensors(value, str(key)):
                yield name, tensor, None


def mapping_entries(obj: object) -> list[TensorEntry]:
    """Entries of every tensor in ``obj``; a tensor seen before under another name (tied) is skipped,
    and so is training state."""
    entries = []
    first_name: dict[tuple, str] = {}
    for name, tensor, reason in checkpoint_tensors(obj):
        if reason is None:
            tied_to = first_name.setdefault(tensor_identity(tensor), name)
            if tied_to != name:
                reason = f"tied (same tensor as {tied_to})"
        entries.append(
            TensorEntry(
                name=name,
                shape=tuple(tensor.shape),
                dtype=dtype_name(tensor.dtype),
                load=tensor.detach,
                skipped=reason,
            )
        )
    return entries
