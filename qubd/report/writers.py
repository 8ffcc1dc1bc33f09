"""Output files are written whole or not at all: into a temporary file beside the target, then
``os.replace``d over it (atomic on POSIX and Windows)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qubd.report.errors import ReportError


def check_writable(path: str | Path) -> Path:
    """``path`` as a Path, after checking its directory exists (so a long score does not end in an
    error); ReportError otherwise."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ReportError(f"{path}: cannot write here, directory {path.parent} does not exist")
    if path.is_dir():
        raise ReportError(f"{path}: is a directory, not a file name")
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path (same directory and suffix) to write; it replaces ``path`` when the block
    succeeds and is removed when it fails."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
