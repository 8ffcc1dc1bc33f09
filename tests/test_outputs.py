"""What qubd writes can never destroy data: not an input, not another output, not a device node, not
half a file; unwritable destinations are found before scoring; signals leave no temporary files."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import qubd
import qubd.checkpoints
from qubd.report import ReportError, writers
from qubd.report.tracker import ComplexityTracker
from tests.test_cli import REPO, assert_one_line_error, run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "model.safetensors"
    save_file(
        {"a.weight": torch.randn(16, 12, generator=g), "b.weight": torch.randn(8, 8, generator=g)}, path
    )
    return path


@pytest.fixture
def no_scoring(monkeypatch):
    """Fails the test if the checkpoint is opened: the checks must come before anything is read."""

    def refuse(*args, **kwargs):
        raise AssertionError("the checkpoint was opened before the outputs were checked")

    monkeypatch.setattr(qubd.checkpoints, "open_source", refuse)


DEVICE_NUMBERS = {"null": (1, 3), "full": (1, 7)}  # Linux's /dev/null and /dev/full


def _char_device(tmp_path: Path, name: str) -> Path:
    """A character device to write to. As root, a private node in ``tmp_path`` (root could replace
    /dev/null itself if the code under test regressed); otherwise the system's, which a regression
    cannot replace (/dev is not writable)."""
    if os.geteuid() != 0:
        return Path("/dev") / name
    node = tmp_path / name
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(*DEVICE_NUMBERS[name]))
    return node


def _sharded_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    save_file({"a.weight": torch.randn(8, 8)}, folder / "model-00001-of-00002.safetensors")
    save_file({"b.weight": torch.randn(8, 8)}, folder / "model-00002-of-00002.safetensors")
    weight_map = {
        "a.weight": "model-00001-of-00002.safetensors",
        "b.weight": "model-00002-of-00002.safetensors",
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return folder


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name or p.name.startswith(".qubd-probe")]


@pytest.mark.parametrize("option", ["--json", "--csv", "--plot"])
def test_output_onto_the_input_is_refused(capsys, checkpoint, no_scoring, option):
    before = checkpoint.read_bytes()
    target = checkpoint if option != "--plot" else checkpoint.with_suffix(".png")
    if option == "--plot":
        os.link(checkpoint, target)  # a hard link: another name, the same file
    status, _, err = run(capsys, "score", str(checkpoint), option, str(target))
    assert_one_line_error(status, err, "is an input", str(target))
    assert checkpoint.read_bytes() == before


def test_output_onto_the_input_through_a_link_or_another_spelling_is_refused(capsys, checkpoint, no_scoring):
    link = checkpoint.parent / "link.json"
    link.symlink_to(checkpoint)
    status, _, err = run(capsys, "score", str(checkpoint), "--json", str(link))
    assert_one_line_error(status, err, "is an input")
    spelled = checkpoint.parent / "." / ".." / checkpoint.parent.name / checkpoint.name
    status, _, err = run(capsys, "score", str(checkpoint), "--csv", str(spelled))
    assert_one_line_error(status, err, "is an input")
    assert link.is_symlink()


@pytest.mark.parametrize("victim", ["model-00002-of-00002.safetensors", "model.safetensors.index.json"])
def test_output_onto_a_shard_or_the_index_of_a_folder_is_refused(capsys, tmp_path, monkeypatch, victim):
    folder = _sharded_folder(tmp_path)
    before = (folder / victim).read_bytes()
    status, _, err = run(capsys, "score", str(folder), "--csv", str(folder / victim))
    assert_one_line_error(status, err, "is an input")
    assert (folder / victim).read_bytes() == before
    report = folder / "report.json"  # a new file in the folder is fine
    status, _, err = run(capsys, "score", str(folder), "--json", str(report), "--quiet")
    assert status == 0, err
    assert json.loads(report.read_text())["counts"]["scored"] == 2


@pytest.mark.parametrize("method", ["to_json", "to_csv", "plot"])
def test_a_report_refuses_to_write_onto_the_files_it_was_scored_from(tmp_path, method):
    folder = _sharded_folder(tmp_path)
    reference = tmp_path / "reference.safetensors"
    save_file({"a.weight": torch.randn(8, 8), "b.weight": torch.randn(8, 8)}, reference)
    report = qubd.score(folder, reference=reference)
    shard, index = folder / "model-00001-of-00002.safetensors", folder / "model.safetensors.index.json"
    for victim in (shard, index, reference):
        before = victim.read_bytes()
        with pytest.raises(ReportError, match=f"^{victim}: is an input"):
            getattr(report, method)(victim)
        assert victim.read_bytes() == before
    new = tmp_path / f"report.{'png' if method == 'plot' else method[3:]}"
    getattr(report, method)(new)  # anything else is written
    assert new.stat().st_size > 0
    # A report read back from its JSON knows no checkpoint files: it writes where it is told.
    json_path = tmp_path / "again.json"
    report.to_json(json_path)
    assert qubd.Report.from_json(json_path).inputs == ()


@pytest.mark.parametrize(
    "first, second",
    [("--json", "--csv"), ("--json", "--plot"), ("--csv", "--plot")],
)
def test_the_same_path_for_two_outputs_is_refused(capsys, checkpoint, tmp_path, no_scoring, first, second):
    out = tmp_path / "x.png"
    status, _, err = run(capsys, "score", str(checkpoint), first, str(out), second, str(out))
    assert_one_line_error(status, err, "the same file")
    assert not out.exists()


def test_two_spellings_of_one_new_output_are_refused(capsys, checkpoint, tmp_path, no_scoring):
    (tmp_path / "sub").mkdir()
    a, b = tmp_path / "r.json", tmp_path / "sub" / ".." / "r.json"
    status, _, err = run(capsys, "score", str(checkpoint), "--json", str(a), "--csv", str(b))
    assert_one_line_error(status, err, "the same file")
    existing = tmp_path / "old.csv"
    existing.write_text("old")
    (tmp_path / "alias.csv").symlink_to(existing)
    status, _, err = run(
        capsys, "score", str(checkpoint), "--csv", str(existing), "--json", str(tmp_path / "alias.csv")
    )
    assert_one_line_error(status, err, "the same file")
    assert existing.read_text() == "old"


def test_an_empty_output_path_is_an_error(capsys, checkpoint, tmp_path, no_scoring):
    for option in ("--json", "--csv", "--plot"):
        status, _, err = run(capsys, "score", str(checkpoint), option, "")
        assert_one_line_error(status, err, "empty")
    status, _, err = run(capsys, "plot", str(tmp_path / "r.json"), "-o", "")
    assert_one_line_error(status, err, "empty")


def test_an_output_in_a_symlink_loop_says_so(capsys, checkpoint, tmp_path, no_scoring):
    (tmp_path / "a.json").symlink_to(tmp_path / "b.json")
    (tmp_path / "b.json").symlink_to(tmp_path / "a.json")
    status, _, err = run(capsys, "score", str(checkpoint), "--json", str(tmp_path / "a.json"))
    assert_one_line_error(status, err, str(tmp_path / "a.json"), "symlink loop")


def test_output_through_a_symlink_replaces_its_target_and_keeps_the_link(capsys, checkpoint, tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    status, _, err = run(capsys, "score", str(checkpoint), "--json", str(link), "--quiet")
    assert status == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["counts"]["scored"] == 2


def test_a_character_device_is_written_not_replaced(capsys, checkpoint, tmp_path):
    null = _char_device(tmp_path, "null")
    before = os.stat(null)
    other_spelling = null.parent / ".." / null.parent.name / null.name
    status, _, err = run(capsys, "score", str(checkpoint), "--json", str(null), "--csv", str(other_spelling))
    assert_one_line_error(status, err, "the same file")  # a device twice is still one file
    status, _, err = run(capsys, "score", str(checkpoint), "--json", str(null), "--quiet")
    assert status == 0, err
    after = os.stat(null)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino


def test_a_fifo_is_written_directly(capsys, checkpoint, tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    status, _, err = run(capsys, "score", str(checkpoint), "--csv", str(fifo), "--quiet")
    reader.join(timeout=60)
    assert status == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received and received[0].decode().startswith("name,shape,dtype,plane")


def test_json_to_stdout_with_a_dash(capsys, checkpoint, tmp_path):
    png = tmp_path / "r.png"
    status, out, err = run(capsys, "score", str(checkpoint), "--json", "-", "--plot", str(png))
    assert status == 0, err
    data = json.loads(out)  # stdout is the JSON alone, without the table
    assert data["counts"]["scored"] == 2
    assert png.read_bytes().startswith(PNG_MAGIC)
    status, _, err = run(capsys, "score", str(checkpoint), "--json", "-", "--csv", "-")
    assert_one_line_error(status, err, "only one output can go to standard output")


def test_sockets_are_refused_as_outputs(capsys, checkpoint, tmp_path, no_scoring):
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        status, _, err = run(capsys, "score", str(checkpoint), "--json", str(path))
        assert_one_line_error(status, err, "socket", str(path))
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        server.close()


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder no one can create files in: a read-only one, or, for root, /proc."""
    if os.geteuid() == 0:
        return Path("/proc")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def test_an_unwritable_destination_is_found_before_scoring(capsys, checkpoint, tmp_path, no_scoring):
    given = str(_unwritable_folder(tmp_path) / "qubd-report.json")
    status, _, err = run(capsys, "score", str(checkpoint), "--json", given)
    assert_one_line_error(status, err, given, "cannot write")


def test_a_full_device_names_the_file(capsys, checkpoint, tmp_path):
    full = _char_device(tmp_path, "full")
    status, _, err = run(capsys, "score", str(checkpoint), "--json", str(full), "--quiet")
    assert_one_line_error(status, err, str(full), os.strerror(errno.ENOSPC))
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_a_full_disk_names_the_file_and_leaves_nothing(capsys, checkpoint, tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writers.os, "fsync", full)
    out = tmp_path / "r.json"
    out.write_text("old")
    status, _, err = run(
        capsys, "score", str(checkpoint), "--json", str(out), "--csv", str(tmp_path / "r.csv")
    )
    assert_one_line_error(status, err, str(out), os.strerror(errno.ENOSPC))
    assert out.read_text() == "old" and not (tmp_path / "r.csv").exists()
    assert _temp_files(tmp_path) == []


def test_plot_command_follows_the_same_rules(capsys, checkpoint, tmp_path):
    report = tmp_path / "r.svg"  # a JSON report that happens to be named like an image
    status, _, err = run(capsys, "score", str(checkpoint), "--json", str(report), "--quiet")
    assert status == 0, err
    before = report.read_bytes()
    status, _, err = run(capsys, "plot", str(report), "-o", str(report))
    assert_one_line_error(status, err, "is an input")
    assert report.read_bytes() == before
    null = _char_device(tmp_path, "null")
    status, _, err = run(capsys, "plot", str(report), "-o", str(null))
    assert status == 0, err
    assert stat.S_ISCHR(os.stat(null).st_mode)


def test_python_writers_follow_the_same_rules(tmp_path, capsys):
    report = qubd.score({"w": torch.randn(8, 8, generator=torch.Generator().manual_seed(1))})
    with pytest.raises(ReportError, match="empty"):
        report.to_json("")
    with pytest.raises(ReportError, match="empty"):
        report.plot("")
    with pytest.raises(ReportError, match="socket"):
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.bind(str(tmp_path / "s"))
            report.to_csv(tmp_path / "s")
        finally:
            sock.close()
    report.to_json("-")
    assert json.loads(capsys.readouterr().out)["counts"]["scored"] == 1
    target = tmp_path / "real.csv"
    target.write_text("old")
    (tmp_path / "link.csv").symlink_to(target)
    report.to_csv(tmp_path / "link.csv")
    assert (tmp_path / "link.csv").is_symlink() and target.read_text().startswith("name,")


def test_tracker_checks_its_path_up_front(tmp_path):
    model = torch.nn.Linear(8, 8)
    with pytest.raises(ReportError, match="empty"):
        ComplexityTracker(model, "")
    with pytest.raises(ReportError, match="standard output"):
        ComplexityTracker(model, "-")
    with pytest.raises(ReportError, match="cannot write"):
        ComplexityTracker(model, _unwritable_folder(tmp_path) / "log.json")
    target = tmp_path / "real.json"
    target.write_text("{}")
    (tmp_path / "log.json").symlink_to(target)
    ComplexityTracker(model, tmp_path / "log.json").log(0)
    assert (tmp_path / "log.json").is_symlink()
    assert json.loads(target.read_text())["entries"][0]["step"] == 0


def _wait_for(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminating_signal_leaves_no_temporary_files(checkpoint, tmp_path, signum):
    """A real process and a real signal: the JSON is staged beside its target and the CSV waits for a
    reader on a FIFO, which never comes; the signal ends it, and the staged files are gone."""
    fifo, out = tmp_path / "csv.fifo", tmp_path / "r.json"
    os.mkfifo(fifo)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)}
    command = [
        sys.executable,
        "-m",
        "qubd.cli",
        "score",
        str(checkpoint),
        "--json",
        str(out),
        "--csv",
        str(fifo),
    ]
    # The signal's default action in the child, whatever the suite inherited (under nohup SIGHUP is
    # ignored, and qubd rightly keeps an ignored signal ignored).
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL),
    )
    try:
        _wait_for(lambda: len(_temp_files(tmp_path)) == 2 or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert err.strip() == f"qubd: error: terminated by {signal.Signals(signum).name}"
    assert _temp_files(tmp_path) == [] and not out.exists()


@pytest.fixture
def examples_common(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    import _common

    return _common


def test_examples_check_out_before_running(examples_common, tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("keep")
    for out in ("", str(not_a_folder), str(_unwritable_folder(tmp_path) / "results")):
        with pytest.raises(SystemExit) as raised:
            examples_common.parse_args("x", ["--out", out])
        assert raised.value.code == 2
        assert "--out" in capsys.readouterr().err
    assert not_a_folder.read_text() == "keep"


def test_examples_write_through_the_checked_writers(examples_common, tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    (tmp_path / "r.json").symlink_to(target)
    examples_common.write_json(tmp_path / "r.json", {"x": 1})
    assert (tmp_path / "r.json").is_symlink() and json.loads(target.read_text()) == {"x": 1}
    with pytest.raises(ValueError):  # NaN is refused before anything is written
        examples_common.write_json(tmp_path / "r.json", {"x": float("nan")})
    assert json.loads(target.read_text()) == {"x": 1} and _temp_files(tmp_path) == []
