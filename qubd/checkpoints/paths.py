"""Which files make up a checkpoint given on the command line: a file, several files, or a Hugging Face
model directory (sharded safetensors with ``model.safetensors.index.json``, or PyTorch ``.bin`` files)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from qubd.checkpoints.errors import CheckpointError
from qubd.checkpoints.safetensors_source import looks_like_safetensors
from qubd.checkpoints.torch_file_source import looks_like_torch_file

SAFETENSORS = "safetensors"
TORCH = "torch"
TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class CheckpointFile:
    path: Path
    format: str  # SAFETENSORS or TORCH
    names: frozenset[str] | None = None  # the tensors a shard index assigns to this file


def checkpoint_files(path: Path) -> list[CheckpointFile]:
    """The files of the checkpoint at ``path``, in order. CheckpointError when there is none."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    if path.is_dir():
        return _directory_files(path)
    return [CheckpointFile(path, file_format(path))]


def file_format(path: Path) -> str:
    """SAFETENSORS for a ``.safetensors`` name, else by the first bytes."""
    if path.suffix == ".safetensors":
        return SAFETENSORS  # safetensors itself says best what is wrong with a broken one
    try:
        if looks_like_torch_file(path):
            return TORCH
        if looks_like_safetensors(path):
            return SAFETENSORS
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror})") from err
    raise CheckpointError(
        f"{path}: not a checkpoint (neither a safetensors file nor a PyTorch file: a zip archive or pickle)"
    )


def _directory_files(directory: Path) -> list[CheckpointFile]:
    for pattern, fmt in (("*.safetensors.index.json", SAFETENSORS), ("*.bin.index.json", TORCH)):
        indexes = sorted(directory.glob(pattern))
        if indexes:
            return _sharded_files(indexes[0], fmt)
    for pattern, fmt in (("*.safetensors", SAFETENSORS),) + tuple((f"*{s}", TORCH) for s in TORCH_SUFFIXES):
        files = sorted(p for p in directory.glob(pattern) if p.is_file())
        if files:
            return [CheckpointFile(p, fmt) for p in files]
    raise CheckpointError(
        f"{directory}: no checkpoint in this directory (looked for *.safetensors.index.json, *.safetensors, "
        "*.bin.index.json, *.bin, *.pt, *.pth, *.ckpt)"
    )


def _sharded_files(index: Path, fmt: str) -> list[CheckpointFile]:
    """The shards an index's ``weight_map`` names, each with the tensors it should hold."""
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{index}: not a valid shard index ({type(err).__name__}: {err})") from err
    shards: dict[str, set[str]] = {}
    for name, shard in weight_map.items():
        shards.setdefault(str(shard), set()).add(name)
    files = []
    for shard in sorted(shards):
        path = index.parent / shard
        if not path.is_file():
            raise CheckpointError(f"{index}: lists shard {shard}, which is missing")
        files.append(CheckpointFile(path, fmt, frozenset(shards[shard])))
    return files
