"""A tensor of a model or checkpoint, described before it is read."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TensorEntry:
    """One named tensor: its shape and dtype from the checkpoint's header, its data on demand.

    ``load()`` reads the tensor (from a memory map or a file) and returns it on the CPU or wherever it
    lives. ``skipped`` is set when the tensor is known not to be scored without reading it (e.g. tied
    to a tensor listed earlier, or not a module weight). ``reinitialize(seed)`` exists for tensors of
    an ``nn.Module``: a fresh random initialisation of the same module (the ``reinit`` baseline).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    load: Callable[[], torch.Tensor]
    skipped: str | None = None
    reinitialize: Callable[[int], torch.Tensor] | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")
