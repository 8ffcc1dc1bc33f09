"""Tensors of a state dict or of whatever ``torch.load`` returned: nested mappings and sequences are
walked, their tensors named by dotted paths."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch

from qubd.checkpoints.entries import TensorEntry, dtype_name

# A training checkpoint that wraps its model's state dict in one of these keys is scored by that
# state dict alone (not the optimizer's moments beside it).
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module")


def model_state(obj: object) -> object:
    """The model's state dict inside a training checkpoint, or ``obj`` itself."""
    if isinstance(obj, Mapping):
        wrapped = [key for key in STATE_DICT_KEYS if isinstance(obj.get(key), Mapping)]
        if len(wrapped) == 1:
            return obj[wrapped[0]]
    return obj


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


def mapping_entries(obj: object) -> list[TensorEntry]:
    """Entries of every tensor in ``obj``; a tensor seen before under another name (tied) is skipped."""
    entries = []
    first_name: dict[tuple, str] = {}
    for name, tensor in named_tensors(model_state(obj)):
        identity = _identity(tensor)
        tied_to = first_name.setdefault(identity, name)
        entries.append(
            TensorEntry(
                name=name,
                shape=tuple(tensor.shape),
                dtype=dtype_name(tensor.dtype),
                load=tensor.detach,
                skipped=None if tied_to == name else f"tied (same tensor as {tied_to})",
            )
        )
    return entries


def _identity(t: torch.Tensor) -> tuple:
    """Tensors with equal identities are the same values in the same memory."""
    if t.numel() == 0:
        return (id(t),)
    return (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), t.shape, t.stride(), t.dtype)
