"""Which files make up a checkpoint given on the command line: a file, several files, or a Hugging Face
model directory (sharded safetensors with ``model.safetensors.index.json``, or PyTorch ``.bin`` files)."""

from __future__ import annotations

import errno
import json
import os
import posixpath
import stat
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath, PureWindowsPath

from qubd.checkpoints.errors import CheckpointError
from qubd.checkpoints.safetensors_source import looks_like_safetensors
from qubd.checkpoints.torch_file_source import looks_like_torch_file

SAFETENSORS = "safetensors"
TORCH = "torch"
TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
# The names Hugging Face gives a model's weights, looked for first in a directory.
STANDARD_INDEXES = (("model.safetensors.index.json", SAFETENSORS), ("pytorch_model.bin.index.json", TORCH))
STANDARD_FILES = (("model.safetensors", SAFETENSORS), ("pytorch_model.bin", TORCH))
# What a training run (e.g. the Hugging Face Trainer) saves beside the weights: never scored as weights.
NON_WEIGHT_FILES = (
    "training_args.bin",
    "optimizer.pt",
    "optimizer.bin",
    "scheduler.pt",
    "scheduler.bin",
    "scaler.pt",
    "rng_state*.pth",
)


@dataclass(frozen=True)
class CheckpointFile:
    path: Path
    format: str  # SAFETENSORS or TORCH
    names: frozenset[str] | None = None  # the tensors a shard index assigns to this file
    index: Path | None = None  # that shard index


def checkpoint_files(path: Path) -> list[CheckpointFile]:
    """The files of the checkpoint at ``path``, in order. CheckpointError when there is none, and at
    once for anything but a regular file or a folder (a FIFO or device would block the reader)."""
    if _is_directory(path):
        return _directory_files(path)
    return [CheckpointFile(path, file_format(path))]


def input_files(path: str | os.PathLike) -> list[Path]:
    """Every file that reading the checkpoint at ``path`` opens: the file itself, or a folder's shard
    index and shards. Outputs are checked against these before anything is scored."""
    path = Path(path)
    if not _is_directory(path):
        return [path]
    files = _directory_files(path)
    return [f.path for f in files] + sorted({f.index for f in files if f.index is not None})


def _is_directory(path: Path) -> bool:
    """True for a folder, False for a regular file (links followed); CheckpointError for anything
    else: missing, a symlink loop, a FIFO, socket or device."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file or directory") from None
    except OSError as err:
        reason = "a symlink loop" if err.errno == errno.ELOOP else err.strerror or str(err)
        raise CheckpointError(f"{path}: cannot read ({reason})") from None
    if stat.S_ISDIR(mode):
        return True
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path}: not a regular file or a folder ({_kind(mode)}); refused")
    return False


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


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
    """The standard Hugging Face names first (an index, then a single file); then any index, any
    ``*.safetensors``, any PyTorch file. Files that hold no weights (``training_args.bin``, the Trainer's
    ``optimizer.pt`` / ``scheduler.pt`` / ``scaler.pt`` / ``rng_state*.pth``) are never picked."""
    for name, fmt in STANDARD_INDEXES:
        if (directory / name).is_file():
            return _sharded_files(directory / name, fmt)
    for name, fmt in STANDARD_FILES:
        if (directory / name).is_file():
            return [CheckpointFile(directory / name, fmt)]
    for pattern, fmt in (("*.safetensors.index.json", SAFETENSORS), ("*.bin.index.json", TORCH)):
        indexes = sorted(directory.glob(pattern))
        if indexes:
            return _sharded_files(indexes[0], fmt)
    for pattern, fmt in (("*.safetensors", SAFETENSORS),) + tuple((f"*{s}", TORCH) for s in TORCH_SUFFIXES):
        files = sorted(p for p in directory.glob(pattern) if p.is_file() and not is_non_weight_file(p))
        if files:
            return [CheckpointFile(p, fmt) for p in files]
    raise CheckpointError(
        f"{directory}: no checkpoint in this directory (looked for *.safetensors.index.json, *.safetensors, "
        "*.bin.index.json, *.bin, *.pt, *.pth, *.ckpt, except training state such as training_args.bin "
        "and optimizer.pt)"
    )


def is_non_weight_file(path: Path) -> bool:
    """A file a training run leaves beside its weights that holds no weights (``optimizer.pt``, ...)."""
    return any(fnmatchcase(path.name, pattern) for pattern in NON_WEIGHT_FILES)


def _sharded_files(index: Path, fmt: str) -> list[CheckpointFile]:
    """The shards an index's ``weight_map`` names, each with the tensors it should hold."""
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except RecursionError:
        raise CheckpointError(f"{index}: not a valid shard index (nested too deeply)") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{index}: not a valid shard index ({type(err).__name__}: {err})") from err
    shards: dict[str, set[str]] = {}
    for name, shard in weight_map.items():
        if not isinstance(shard, str):
            raise CheckpointError(
                f"{index}: not a valid shard index (weight_map maps {name!r} to {json.dumps(shard)}, "
                "not to a file name)"
            )
        shards.setdefault(shard, set()).add(name)
    files = []
    for shard in sorted(shards):
        path = index.parent / _shard_name(index, shard)
        if not path.exists():
            raise CheckpointError(f"{index}: lists shard {shard}, which is missing")
        if _is_directory(path):
            raise CheckpointError(f"{index}: lists shard {shard}, which is a folder")
        files.append(CheckpointFile(path, fmt, frozenset(shards[shard]), index))
    return files


def _shard_name(index: Path, shard: str) -> str:
    """``shard`` when it names a file in the index's directory (or below it). An absolute path, or one
    that leads out of the directory (``../x.safetensors``, or through a linked folder), is a
    CheckpointError: an index from the internet must not make qubd open files elsewhere. The shard file
    itself may be a symlink: the Hugging Face cache links every file of a snapshot directory to a blob
    outside it, and those are the checkpoint's own files."""
    normal = posixpath.normpath(shard.replace("\\", "/"))
    outside = (
        not shard
        or PurePosixPath(normal).is_absolute()
        or bool(PureWindowsPath(shard).drive)
        or normal in (".", "..")
        or normal.startswith("../")
    )
    if not outside:
        directory = index.parent.resolve()
        outside = not (index.parent / normal).parent.resolve().is_relative_to(directory)
    if outside:
        raise CheckpointError(
            f"{index}: refused the weight_map entry {shard!r}: a shard must be a file in the index's "
            "directory, not an absolute path or a path outside it"
        )
    return normal
