"""Many small tensors of one file read with one read: their byte range copied into one buffer, each
tensor a view of it.

Reading a 4x4 tensor through ``safe_open.get_tensor`` (a slice of the memory map, a tensor made from
it, its page faulted in) costs ~30 µs: more than scoring it. The tensors' byte ranges (``span``) come
from the file's header, which ``safetensors.safe_open`` has validated when the file was listed (offsets
inside the file, neither overlapping nor leaving gaps, each range as long as its dtype and shape need);
a file that changed since then (a short read, a range that no longer fits its shape) is a
CheckpointError naming the file and the tensor.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

import torch

from qubd.checkpoints.entries import TensorEntry
from qubd.checkpoints.errors import CheckpointError

# The most bytes one read covers (the tensors' ranges and whatever lies between them).
CHUNK_BYTES = 2**22


class Chunk:
    """Tensors of one file to read together: their ranges fit in ``CHUNK_BYTES``."""

    def __init__(self, first: TensorEntry):
        self.entries = [first]
        self.start, self.stop = first.span

    def add(self, entry: TensorEntry) -> bool:
        """Take ``entry`` when it has a span in the same file and the chunk stays within
        ``CHUNK_BYTES``; False (nothing changed) otherwise."""
        if entry.span is None or entry.file != self.entries[0].file:
            return False
        start, stop = min(self.start, entry.span[0]), max(self.stop, entry.span[1])
        if stop - start > CHUNK_BYTES:
            return False
        self.start, self.stop = start, stop
        self.entries.append(entry)
        return True

    def read(self) -> list[torch.Tensor]:
        """The tensors, in order, each a view of one buffer holding the chunk's byte range."""
        path, first = self.entries[0].file, self.entries[0]
        buffer = torch.empty(self.stop - self.start, dtype=torch.uint8)
        got = 0
        try:
            with open_regular(path) as f:
                f.seek(self.start)
                view = memoryview(buffer.numpy())
                while got < len(view) and (n := f.readinto(view[got:])):
                    got += n
        except OSError as err:
            reason = err.strerror or err
            raise CheckpointError(f"{path}: cannot read tensor '{first.name}' ({reason})") from None
        if got != len(buffer):
            short = next(e for e in self.entries if e.span[1] > self.start + got)
            raise CheckpointError(
                f"{path}: cannot read tensor '{short.name}': the file ends before its data "
                "(truncated since it was opened?)"
            )
        tensors = []
        for run in _runs(self.entries):
            tensors.extend(_views(buffer, self.start, run))
        return tensors


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for reading; CheckpointError, without blocking, for anything but a regular
    file (a file swapped for a FIFO after it was listed must not hang the reader)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckpointError(f"{path}: no longer a regular file; refused")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _runs(entries: list[TensorEntry]) -> list[list[TensorEntry]]:
    """``entries`` cut into runs of one dtype and shape stored back to back (one view and an
    ``unbind`` make a run's tensors: a view per tensor costs 4x more)."""
    runs = [[entries[0]]]
    for entry in entries[1:]:
        last = runs[-1][-1]
        if entry.span[0] == last.span[1] and entry.shape == last.shape and entry.dtype == last.dtype:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


def _views(buffer: torch.Tensor, base: int, run: list[TensorEntry]) -> tuple[torch.Tensor, ...]:
    """The tensors of ``run`` (see ``_runs``) as views of ``buffer``, which starts at byte ``base``."""
    first, last = run[0], run[-1]
    dtype = getattr(torch, first.dtype)
    begin, end = first.span[0] - base, last.span[1] - base
    data = buffer[begin:end]
    if begin % dtype.itemsize:  # a view must be aligned to its dtype: copy these bytes instead
        data = data.clone()
    try:
        return data.view(dtype).view(len(run), *first.shape).unbind(0)
    except RuntimeError as err:
        where = f"'{first.name}'" if len(run) == 1 else f"'{first.name}' .. '{last.name}'"
        raise CheckpointError(
            f"{first.file}: cannot read tensor {where} ({end - begin} bytes do not hold "
            f"{len(run)} {first.dtype} tensor(s) of shape {list(first.shape)}: {err})"
        ) from None
