"""Open anything qubd scores (a module, a state dict, checkpoint paths) as one list of tensor entries."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from torch import nn

from qubd.checkpoints.entries import TensorEntry
from qubd.checkpoints.errors import CheckpointError
from qubd.checkpoints.filters import NameFilter
from qubd.checkpoints.hub import resolve_checkpoint
from qubd.checkpoints.mapping_source import mapping_entries
from qubd.checkpoints.module_source import module_entries
from qubd.checkpoints.paths import SAFETENSORS, CheckpointFile, checkpoint_files, input_files
from qubd.checkpoints.safetensors_source import SafetensorsReader, safetensors_entries
from qubd.checkpoints.torch_file_source import torch_file_entries

# The skip reason of a tensor a shard holds but its index does not list for it.
NOT_INDEXED = "not in the shard index"

Scorable = nn.Module | Mapping | str | os.PathLike | Sequence[str | os.PathLike]


@dataclass
class TensorSource:
    """The tensors of one model or checkpoint, in order, after the name filter.

    Use as a context manager: it closes the files still open. ``excluded`` counts the
    tensors the name filter left out; ``is_module`` tells whether ``reinitialize`` is available;
    ``inputs``: the files read (a checkpoint's), which nothing made from them may overwrite.
    """

    description: str
    entries: list[TensorEntry]
    excluded: int = 0
    is_module: bool = False
    _files: ExitStack = field(default_factory=ExitStack, repr=False)
    inputs: tuple[Path, ...] = ()

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
        description, entries, is_module, inputs = _entries(obj, files)
    except BaseException:
        files.close()
        raise
    keep = NameFilter.of(include, exclude)
    kept = [e for e in entries if keep(e.name)]
    return TensorSource(description, kept, len(entries) - len(kept), is_module, files, inputs)


def _entries(obj: Scorable, files: ExitStack) -> tuple[str, list[TensorEntry], bool, tuple[Path, ...]]:
    if isinstance(obj, nn.Module):
        return type(obj).__name__, module_entries(obj), True, ()
    if isinstance(obj, Mapping):
        return "state dict", mapping_entries(obj), False, ()
    if isinstance(obj, (str, os.PathLike)):
        specs = [obj]
    elif isinstance(obj, Sequence) and obj and all(isinstance(p, (str, os.PathLike)) for p in obj):
        specs = list(obj)
    else:
        raise TypeError(
            f"cannot score a {type(obj).__name__}: pass an nn.Module, a state dict, or checkpoint path(s)"
        )
    paths = [resolve_checkpoint(spec) for spec in specs]  # a model name: its snapshot in the HF cache
    reader = SafetensorsReader()
    files.callback(reader.close)
    entries = []
    for path in paths:
        for file in checkpoint_files(path):
            entries.extend(_file_entries(file, reader))
    _check_unique(entries, paths)
    inputs = tuple(f for path in paths for f in input_files(path))
    return ", ".join(str(spec) for spec in specs), entries, False, inputs


def _file_entries(file: CheckpointFile, reader: SafetensorsReader) -> list[TensorEntry]:
    if file.format == SAFETENSORS:
        entries = safetensors_entries(file.path, reader)
    else:
        entries = torch_file_entries(file.path)
    return entries if file.names is None else _as_indexed(entries, file)


def _as_indexed(entries: list[TensorEntry], file: CheckpointFile) -> list[TensorEntry]:
    """A shard's entries against its index (the same for safetensors and PyTorch shards): a tensor the
    index assigns to the shard but the shard lacks is a CheckpointError; a tensor the shard holds but
    the index does not assign to it is kept, skipped with the reason ``not in the shard index``."""
    held = {e.name for e in entries}
    missing = sorted(file.names - held)
    if missing:
        raise CheckpointError(
            f"{file.path}: the index lists {len(missing)} tensor(s) this shard does not hold, "
            f"e.g. '{missing[0]}'"
        )
    index_name = file.index.name if file.index is not None else "shard index"
    return [
        e
        if e.name in file.names
        else replace(e, skipped=f"{NOT_INDEXED} ({index_name} does not list it for {file.path.name})")
        for e in entries
    ]


def _check_unique(entries: list[TensorEntry], paths: list[Path]) -> None:
    """No name twice (a shard's stale copy of a tensor the index assigns elsewhere is reported, not
    counted)."""
    seen = set()
    for entry in entries:
        if entry.skipped is not None and entry.skipped.startswith(NOT_INDEXED):
            continue
        if entry.name in seen:
            where = ", ".join(str(p) for p in paths)
            raise CheckpointError(f"{where}: tensor '{entry.name}' appears more than once")
        seen.add(entry.name)
