"""Output files are written whole or not at all: into a temporary file beside the target, then
``os.replace``d over it (atomic on POSIX and Windows). Several outputs of one command are staged
together (``staged``) and put in place only once all of them were written.

The files get the permissions a plain ``open(path, "w")`` would give them: those of the file they
replace, or ``0o666`` less the umask for a new file (not the ``0o600`` of ``tempfile.mkstemp``)."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qubd.report.errors import ReportError

NEW_FILE_MODE = 0o666


def check_writable(path: str | Path) -> Path:
    """``path`` as a Path, after checking its directory exists (so a long score does not end in an
    error); ReportError otherwise."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ReportError(f"{path}: cannot write here, directory {path.parent} does not exist")
    if path.is_dir():
        raise ReportError(f"{path}: is a directory, not a file name")
    return path


def _umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux), else by
    setting and restoring it."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary(path: Path) -> Path:
    """An empty temporary file beside ``path`` (same suffix), with the mode ``open()`` would give."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    try:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            mode = NEW_FILE_MODE & ~_umask()
        os.chmod(tmp, mode)
    finally:
        os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path (same directory and suffix) to write; it replaces ``path`` when the block
    succeeds and is removed when it fails."""
    with staged() as stage:
        yield stage.path(path)


class Staging:
    """Temporary files for several outputs; see ``staged``."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, Path]] = []

    def path(self, target: str | Path) -> Path:
        """A temporary path to write ``target``'s content to (same directory and suffix)."""
        target = check_writable(target)
        tmp = _temporary(target)
        self._files.append((tmp, target))
        return tmp

    def commit(self) -> None:
        while self._files:
            tmp, target = self._files[0]
            os.replace(tmp, target)
            self._files.pop(0)

    def discard(self) -> None:
        for tmp, _ in self._files:
            tmp.unlink(missing_ok=True)
        self._files.clear()


@contextmanager
def staged() -> Iterator[Staging]:
    """Write several outputs, all or none: each ``stage.path(target)`` is a temporary file; when the
    block succeeds they all replace their targets, when it fails they are all removed and no target
    is touched."""
    stage = Staging()
    try:
        yield stage
        stage.commit()
    finally:
        stage.discard()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
