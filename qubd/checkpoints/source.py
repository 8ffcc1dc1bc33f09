"""Open anything qubd scores (a module, a state dict, checkpoint paths) as one list of tensor entries."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from qubd.checkpoints.entries import TensorEntry
from qubd.checkpoints.errors import CheckpointError
from qubd.checkpoints.filters import NameFilter
from qubd.checkpoints.mapping_source import mapping_entries
from qubd.checkpoints.module_source import module_entries
from qubd.checkpoints.paths import SAFETENSORS, CheckpointFile, checkpoint_files
from qubd.checkpoints.safetensors_source import SafetensorsReader, safetensors_entries
from qubd.checkpoints.torch_file_source import torch_file_entries

Scorable = nn.Module | Mapping | str | os.PathLike | Sequence[str | os.PathLike]


@dataclass
class TensorSource:
    """The tensors of one model or checkpoint, in order, after the name filter.

    Use as a context manager: it closes the files still open. ``excluded`` counts the
    tensors the name filter left out; ``is_module`` tells whether ``reinitialize`` is available.
    """

    description: str
    entries: list[TensorEntry]
    excluded: int = 0
    is_module: bool = False
    _files: ExitStack = field(default_factory=ExitStack, repr=False)

    def close(self) -> None:
        self._files.close()

    def __enter__(self) -> TensorSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(
    obj: Scorable, include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None
) -> TensorSource:
    """A TensorSource for an ``nn.Module``, a state dict, a checkpoint path, or a list of paths that
    together make one checkpoint. CheckpointError for a path that cannot be read."""
    files = ExitStack()
    try:
        description, entries, is_module = _entries(obj, files)
    except BaseException:
        files.close()
        raise
    keep = NameFilter.of(include, exclude)
    kept = [e for e in entries if keep(e.name)]
    return TensorSource(description, kept, len(entries) - len(kept), is_module, files)


def _entries(obj: Scorable, files: ExitStack) -> tuple[str, list[TensorEntry], bool]:
    if isinstance(obj, nn.Module):
        return type(obj).__name__, module_entries(obj), True
    if isinstance(obj, Mapping):
        return "state dict", mapping_entries(obj), False
    if isinstance(obj, (str, os.PathLike)):
        paths = [Path(obj)]
    elif isinstance(obj, Sequence) and obj and all(isinstance(p, (str, os.PathLike)) for p in obj):
        paths = [Path(p) for p in obj]
    else:
        raise TypeError(
            f"cannot score a {type(obj).__name__}: pass an nn.Module, a state dict, or checkpoint path(s)"
        )
    reader = SafetensorsReader()
    files.callback(reader.close)
    entries = []
    for path in paths:
        for file in checkpoint_files(path):
            entries.extend(_file_entries(file, reader))
    _check_unique(entries, paths)
    return ", ".join(str(p) for p in paths), entries, False


def _file_entries(file: CheckpointFile, reader: SafetensorsReader) -> list[TensorEntry]:
    if file.format == SAFETENSORS:
        return safetensors_entries(file.path, reader, file.names)
    entries = torch_file_entries(file.path)
    if file.names is not None:
        entries = [e for e in entries if e.name in file.names]
    return entries


def _check_unique(entries: list[TensorEntry], paths: list[Path]) -> None:
    seen = set()
    for entry in entries:
        if entry.name in seen:
            where = ", ".join(str(p) for p in paths)
            raise CheckpointError(f"{where}: tensor '{entry.name}' appears more than once")
        seen.add(entry.name)
