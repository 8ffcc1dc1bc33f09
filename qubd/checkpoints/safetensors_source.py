"""Tensors of ``.safetensors`` files, memory-mapped by ``safetensors.safe_open``: the header gives
names, shapes and dtypes; each tensor is read only when it is loaded."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import threading
from pathlib import Path

import torch

from qubd.checkpoints.collector import collector_paused
from qubd.checkpoints.entries import TensorEntry
from qubd.checkpoints.errors import CheckpointError
from qubd.checkpoints.spans import open_regular

# safetensors' dtype codes, named as torch names them (``entries.dtype_name``).
DTYPE_NAMES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
}
HEADER_SIZE_BYTES = 8
METADATA = "__metadata__"
ITEM_SIZES = {code: getattr(torch, name).itemsize for code, name in DTYPE_NAMES.items()}
# Codes whose bytes are the tensor as torch stores it (whole bytes a value, little-endian like the
# machines qubd runs on): such tensors can be read as views of the file's bytes.
SPAN_DTYPES = frozenset(DTYPE_NAMES) if sys.byteorder == "little" else frozenset()


def looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with the little-endian length of its JSON header, then ``{``."""
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE_BYTES + 1)
    if len(head) < HEADER_SIZE_BYTES + 1:
        return False
    header_len = int.from_bytes(head[:HEADER_SIZE_BYTES], "little")
    return head[HEADER_SIZE_BYTES:] == b"{" and header_len < path.stat().st_size


class SafetensorsReader:
    """Reads tensors from safetensors files, keeping only the file read last open.

    ``safe_open`` memory-maps a file and its tensors are views of the map: the pages a score touched
    stay mapped (and counted in the resident memory) until the file is closed. Reading the tensors
    of a sharded checkpoint in order, one shard at a time is open, so the resident memory stays near
    one shard, not the whole checkpoint.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._handle = None

    def read(self, path: Path, key: str) -> torch.Tensor:
        with self._lock:
            if path != self._path:
                self.close_file()
                self._handle = _open(path)
                self._path = path
            try:
                return self._handle.get_tensor(key)
            except Exception as err:
                raise CheckpointError(f"{path}: cannot read tensor '{key}' ({err})") from err

    def close_file(self) -> None:
        if self._handle is not None:
            self._handle.__exit__(None, None, None)
        self._handle = self._path = None

    def close(self) -> None:
        with self._lock:
            self.close_file()


def _open(path: Path):
    try:
        from safetensors import safe_open
    except ImportError as err:  # pragma: no cover - safetensors is a dependency
        raise CheckpointError(f"{path}: reading .safetensors files needs the safetensors package") from err
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
        return handle.__enter__()
    except Exception as err:
        raise CheckpointError(f"{path}: not a valid safetensors file, truncated or corrupt ({err})") from err


def safetensors_entries(path: Path, reader: SafetensorsReader) -> list[TensorEntry]:
    """Entries of the tensors in ``path``, from its header; ``reader`` reads them, or, small ones,
    ``qubd.checkpoints.spans`` from their byte ranges. A truncated or corrupt file is a
    CheckpointError naming it. (A shard is checked against its index by the caller.)"""
    handle = _open(path)  # the library validates the header: every range in the file, fitting its tensor
    try:
        names = handle.keys()
    finally:
        handle.__exit__(None, None, None)
    with collector_paused():  # 100,000 tensors: as many header dicts and entries
        header, data_start = _header(path)
        if set(header) - {METADATA} != set(names):
            raise CheckpointError(f"{path}: its header changed while it was read")
        return _entries(path, names, header, data_start, reader)


def _entries(
    path: Path, names: list[str], header: dict, data_start: int, reader: SafetensorsReader
) -> list[TensorEntry]:
    file = str(path)
    file_size = path.stat().st_size
    entries = []
    for name in names:
        try:
            info = header[name]
            code = info["dtype"]
            shape = tuple(map(int, info["shape"]))
            start, stop = map(int, info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(
                f"{path}: tensor '{name}': its header entry changed since the file was opened"
            ) from None
        if code in SPAN_DTYPES:
            # safe_open validated the header it read; this second read is checked as strictly, so
            # that a file swapped in between cannot ask for a huge read or a range outside it.
            needed = math.prod(shape) * ITEM_SIZES[code]
            if not (0 <= start <= stop <= file_size - data_start and stop - start == needed):
                raise CheckpointError(
                    f"{path}: tensor '{name}': its byte range [{start}, {stop}) does not hold a {code} "
                    f"tensor of shape {list(shape)} inside the file (changed since it was opened?)"
                )
        entries.append(
            TensorEntry(
                name=name,
                shape=shape,
                dtype=DTYPE_NAMES.get(code, code.lower()),
                load=functools.partial(reader.read, path, name),
                file=file,
                span=(data_start + start, data_start + stop) if code in SPAN_DTYPES else None,
            )
        )
    return entries


def _header(path: Path) -> tuple[dict, int]:
    """The file's JSON header and where its data start (after ``safe_open`` accepted the file)."""
    try:
        with open_regular(path) as f:
            size = int.from_bytes(f.read(HEADER_SIZE_BYTES), "little")
            if size > os.fstat(f.fileno()).st_size - HEADER_SIZE_BYTES:
                raise ValueError(f"a header of {size} bytes is longer than the file")
            header = json.loads(f.read(size))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read its header ({err})") from None
    return header, HEADER_SIZE_BYTES + size
