"""Every file qubd writes goes through here: the destination is checked before any work is done,
and the content is written whole or not at all.

- ``check_outputs`` / ``check_output`` validate destinations up front: not empty, not a directory,
  not one of the inputs and not another output (compared by file identity: device and inode, after
  following links), not a socket or block device, and writable (a temporary file is created in the
  destination folder and removed again). Errors name the path as the caller gave it.
- A regular file, or a symlink to one, is replaced atomically: the content goes to a temporary file
  beside the link's target, which is then ``os.replace``d over the target (the link stays a link).
- A FIFO or character device (``/dev/null``, ``/dev/stdout``, ``>(...)``) cannot be replaced
  atomically: it is written directly, never replaced by a regular file. ``-`` is standard output.
- Several outputs of one command are staged together (``staged``): nothing is put in place until
  all of them were written; on failure (or an interrupting signal) the temporary files are removed.

The files get the permissions a plain ``open(path, "w")`` would give them: those of the file they
replace, or ``0o666`` less the umask for a new file (not the ``0o600`` of ``tempfile.mkstemp``)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qubd.report.errors import ReportError

NEW_FILE_MODE = 0o666
STDOUT = "-"
PathLike = str | os.PathLike


@dataclass(frozen=True)
class Output:
    """A checked destination. ``given``: the path as the caller spelled it (named in errors);
    ``target``: the regular file that is atomically replaced (a symlink's target), or None;
    ``stream``: the FIFO or character device written directly, or None (both None: stdout);
    ``identity``: what makes two destinations the same file."""

    given: str
    target: Path | None
    stream: Path | None
    identity: tuple

    @property
    def is_stdout(self) -> bool:
        return self.target is None and self.stream is None


def check_output(path: PathLike | Output, *, allow_stdout: bool = True) -> Output:
    """``path`` checked as a destination (see the module docstring); ReportError naming it if not."""
    if isinstance(path, Output):
        return path
    given = os.fspath(path)
    if not given:
        raise ReportError("an output path is empty")
    if given == STDOUT:
        if not allow_stdout:
            raise ReportError("'-' (standard output) cannot be used here: give a file name")
        return Output(given, None, None, ("stdout",))
    try:
        st = os.stat(given)  # follows links
    except FileNotFoundError:
        return _new_file(given)
    except OSError as err:
        raise ReportError(f"{given}: {_reason(err)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ReportError(f"{given}: is a directory, not a file name")
    identity = (st.st_dev, st.st_ino)
    if stat.S_ISREG(st.st_mode):
        target = Path(os.path.realpath(given))
        _probe_folder(given, target.parent)
        return Output(given, target, None, identity)
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
        if not os.access(given, os.W_OK):
            raise ReportError(f"{given}: cannot write (permission denied)")
        return Output(given, None, Path(given), identity)
    kind = "socket" if stat.S_ISSOCK(st.st_mode) else "block device" if stat.S_ISBLK(st.st_mode) else "device"
    raise ReportError(f"{given}: is a {kind}; qubd writes only regular files, FIFOs and character devices")


def _new_file(given: str) -> Output:
    """A destination that does not exist yet (or a dangling link: its target is created)."""
    target = Path(os.path.realpath(given))
    if not target.parent.is_dir():
        raise ReportError(f"{given}: cannot write here, directory {target.parent} does not exist")
    _probe_folder(given, target.parent)
    return Output(given, target, None, ("new", str(target)))


def _probe_folder(given: str, folder: Path) -> None:
    """Create and remove a temporary file in ``folder``: an unwritable destination is found now,
    not after hours of scoring."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".qubd-probe.")
    except OSError as err:
        raise ReportError(f"{given}: cannot write into {folder} ({_reason(err)})") from None
    try:
        os.close(fd)
    finally:
        os.unlink(probe)


def _reason(err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "a symlink loop"
    return err.strerror or str(err)


def check_outputs(paths: Iterable[PathLike], inputs: Iterable[PathLike] = ()) -> list[Output]:
    """Each path checked by ``check_output``, and none of them the same file as another or as one of
    ``inputs`` (the files a command reads); ReportError otherwise."""
    outputs = [check_output(p) for p in paths]
    seen: dict[tuple, Output] = {}
    for out in outputs:
        if out.identity in seen:
            first = seen[out.identity]
            if out.is_stdout:
                raise ReportError("only one output can go to standard output ('-')")
            raise ReportError(
                f"{first.given} and {out.given} are the same file: give each output its own path"
            )
        seen[out.identity] = out
    for path in inputs:
        try:
            st = os.stat(path)
        except OSError:
            continue  # the reader reports a missing input
        out = seen.get((st.st_dev, st.st_ino))
        if out is not None:
            raise ReportError(f"{out.given}: is an input ({os.fspath(path)}); refusing to overwrite it")
    return outputs


def check_writable(path: PathLike) -> Path:
    """``path`` as a Path, after checking it can be written (``check_output``, a file name only)."""
    check_output(path, allow_stdout=False)
    return Path(path)


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


def _temporary(out: Output) -> Path:
    """An empty temporary file: beside the target of a file output, with the mode ``open()`` would
    give it; in the system's temporary folder for a stream."""
    if out.target is None:
        fd, tmp = tempfile.mkstemp(prefix="qubd-", suffix=".tmp")
        os.close(fd)
        return Path(tmp)
    target = out.target
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}")
    try:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:
            mode = NEW_FILE_MODE & ~_umask()
        os.chmod(tmp, mode)
    finally:
        os.close(fd)
    return Path(tmp)


class Staging:
    """Temporary files for several outputs; see ``staged``."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, Output]] = []

    def write(self, destination: PathLike | Output, produce: Callable[[Path], None]) -> None:
        """``produce(tmp)`` writes the content of ``destination`` into the temporary file ``tmp``."""
        out = check_output(destination)
        tmp = _temporary(out)
        self._files.append((tmp, out))
        try:
            produce(tmp)
        except OSError as err:
            raise ReportError(f"{out.given}: cannot write ({_reason(err)})") from err

    def write_text(self, destination: PathLike | Output, text: str | list[str]) -> None:
        """``text``, or its parts one after another, as UTF-8."""
        self.write(destination, lambda tmp: _write_text(tmp, text))

    def commit(self) -> None:
        """Streams first (they cannot be undone: if one fails, no file was replaced), then files."""
        ordered = sorted(self._files, key=lambda item: item[1].target is not None)
        for tmp, out in ordered:
            try:
                if out.target is not None:
                    os.replace(tmp, out.target)
                else:
                    _copy_to_stream(tmp, out)
            except BrokenPipeError:
                if out.is_stdout:  # the reader of stdout went away (``| head``): the CLI's to handle
                    raise
                raise ReportError(f"{out.given}: cannot write (the reader closed it)") from None
            except OSError as err:
                raise ReportError(f"{out.given}: cannot write ({_reason(err)})") from err
            self._files.remove((tmp, out))
            tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        for tmp, _ in self._files:
            tmp.unlink(missing_ok=True)
        self._files.clear()


def _copy_to_stream(tmp: Path, out: Output) -> None:
    with open(tmp, "rb") as src:
        if out.is_stdout:
            sys.stdout.flush()
            shutil.copyfileobj(src, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        with open(out.stream, "wb") as dst:
            shutil.copyfileobj(src, dst)


@contextmanager
def staged() -> Iterator[Staging]:
    """Write several outputs, all or none: each ``stage.write(destination, produce)`` goes to a
    temporary file; when the block succeeds they are all put in place, when it fails (or a signal
    interrupts it) they are all removed and no destination is touched."""
    stage = Staging()
    try:
        yield stage
        stage.commit()
    finally:
        stage.discard()


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temporary path to write; it replaces ``path`` when the block succeeds and is removed when
    it fails."""
    with staged() as stage:
        produced: list[Path] = []
        stage.write(path, produced.append)
        yield produced[0]


def write_file(path: PathLike | Output, produce: Callable[[Path], None]) -> None:
    """One output, written by ``produce(tmp)`` and put in place (see the module docstring)."""
    with staged() as stage:
        stage.write(path, produce)


def write_text(path: PathLike | Output, text: str) -> None:
    with staged() as stage:
        stage.write_text(path, text)


def _write_text(tmp: Path, text: str | list[str]) -> None:
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.writelines([text] if isinstance(text, str) else text)
        f.flush()
        os.fsync(f.fileno())
