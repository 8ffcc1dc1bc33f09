"""A tensor of a model or checkpoint, described before it is read."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One named tensor: its shape and dtype from the checkpoint's header, its data on demand.

    ``load()`` reads the tensor (from a memory map or a file) and returns it on the CPU or wherever it
    lives. ``skipped`` is set when the tensor is known not to be scored without reading it (e.g. tied
    to a tensor listed earlier, or not a module weight). ``reinitialize(seed)`` exists for tensors of
    an ``nn.Module``: a fresh random initialisation of the same module (the ``reinit`` baseline).
    ``file`` is the checkpoint file it is read from (None for a module or state dict).
    ``reference()`` reads the tensor of the same name in a reference checkpoint (the ``reference``
    baseline), when the entry was paired with one (``qubd.report.reference``).
    ``span``: where its bytes lie in ``file`` (``[start, stop)``, from the start of the file), when
    the file stores it as plain little-endian data; many small tensors are then read together
    (``qubd.checkpoints.spans``).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    load: Callable[[], torch.Tensor]
    skipped: str | None = None
    reinitialize: Callable[[int], torch.Tensor] | None = None
    file: str | None = None
    reference: Callable[[], torch.Tensor] | None = None
    span: tuple[int, int] | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def label(self) -> str:
        """How errors name it: ``tensor 'name' (in file)``."""
        return f"tensor '{self.name}'" + (f" (in {self.file})" if self.file else "")


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


def tensor_identity(t: torch.Tensor) -> tuple:
    """Equal for tensors that are the same values in the same memory: tied weights, whether they are
    one Parameter object or several sharing storage (``load_state_dict(..., assign=True)``, tying by
    ``.data``). The storage's address, the offset into it, shape, stride and dtype; a tensor without
    real storage (empty, meta, sparse) is only itself."""
    if t.numel() == 0 or t.device.type == "meta" or t.layout != torch.strided:
        return (id(t),)
    try:
        ptr = t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # e.g. tensor subclasses without storage
        return (id(t),)
    return (t.device, ptr, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
