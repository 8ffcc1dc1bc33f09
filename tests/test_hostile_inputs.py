"""Careless or hostile inputs: special files, link loops, nesting bombs, odd index entries, extreme
but finite weights, tiny spans, and names made to attack a spreadsheet or a terminal."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import qubd
from qubd.checkpoints import CheckpointError, open_source
from qubd.report import ReportError
from qubd.report.range_notes import FLOAT64_GRID, TINY_SPAN
from tests.oracles import paper_qubd, pybdm_bdm
from tests.test_cli import REPO, assert_one_line_error, run

FLOAT32_NEAR_MAX = 3.3e38  # bf16 holds it too (its largest finite value is 3.39e38)


def test_a_fifo_checkpoint_is_refused_at_once(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "qubd.cli", "score", str(fifo)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"qubd: error: {fifo}: not a regular file or a folder (a FIFO); refused"


def test_a_socket_checkpoint_is_refused(tmp_path):
    path = tmp_path / "model.bin"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(CheckpointError, match="not a regular file or a folder \\(a socket\\)"):
            open_source(path)
    finally:
        server.close()


def test_a_symlink_loop_says_so(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(CheckpointError, match="symlink loop"):
        open_source(a)


def _torch_file_with_pickle(path: Path, pickled: bytes) -> None:
    """A zip-format torch file whose data.pkl is ``pickled``."""
    torch.save({"w": torch.zeros(4, 4)}, path)
    with zipfile.ZipFile(path) as original:
        members = {name: original.read(name) for name in original.namelist()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as rewritten:
        for name, data in members.items():
            rewritten.writestr(name, pickled if name.endswith("/data.pkl") else data)
    path.write_bytes(buffer.getvalue())


def test_a_self_referencing_pickle_names_the_file(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    loop: list = [torch.randn(8, 8)]
    loop.append(loop)
    torch.save({"w": loop}, path)
    with pytest.raises(CheckpointError, match="contain themselves") as raised:
        open_source(path)
    assert str(path) in str(raised.value)


def test_a_pickle_nested_100k_deep_names_the_file(tmp_path):
    path = tmp_path / "deep.bin"
    depth = 100_000
    _torch_file_with_pickle(path, b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".")
    with pytest.raises(CheckpointError, match="nested too deeply") as raised:
        open_source(path)
    assert str(path) in str(raised.value)


def test_an_index_nested_100k_deep_names_the_file(tmp_path, capsys):
    save_file({"w": torch.randn(8, 8)}, tmp_path / "model.safetensors")
    index = tmp_path / "model.safetensors.index.json"
    index.write_text("[" * 100_000)
    status, _, err = run(capsys, "score", str(tmp_path))
    assert_one_line_error(status, err, str(index), "nested too deeply")


@pytest.mark.parametrize("value", [5, None, ["model.safetensors"]])
def test_weight_map_values_must_be_file_names(tmp_path, value):
    save_file({"w": torch.randn(8, 8)}, tmp_path / "model.safetensors")
    (tmp_path / str(value)).write_bytes((tmp_path / "model.safetensors").read_bytes())  # a file named "5"
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"w": value}}))
    with pytest.raises(CheckpointError, match="not to a file name") as raised:
        open_source(tmp_path)
    assert str(index) in str(raised.value)


def _float64_oracle(w: torch.Tensor, bits: int) -> np.ndarray:
    """Min/max grid and codes in numpy float64, then pybdm on each bit-plane."""
    a = w.double().numpy()
    lo, hi = a.min(), a.max()
    delta = (hi - lo) / (2**bits - 1)
    codes = np.clip(np.rint((a - lo) / delta), 0, 2**bits - 1).astype(np.int64)
    return np.array([pybdm_bdm((codes >> i) & 1) for i in range(bits)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finite_weights_near_the_float32_limit_are_scored_in_float64(tmp_path, capsys, dtype):
    g = torch.Generator().manual_seed(3)
    wide = (torch.rand(16, 12, generator=g) * 2 - 1).mul(FLOAT32_NEAR_MAX).to(dtype)
    wide[0, 0], wide[0, 1] = -FLOAT32_NEAR_MAX, FLOAT32_NEAR_MAX
    assert torch.isfinite(wide).all() and not torch.isfinite(wide.float().max() - wide.float().min())
    normal = torch.randn(8, 8, generator=g)
    path = tmp_path / "model.safetensors"
    save_file({"wide.weight": wide, "normal.weight": normal}, path)
    out = tmp_path / "r.json"
    status, stdout, err = run(
        capsys, "score", str(path), "--clip", "none", "--bits", "6", "--json", str(out), "--tensors"
    )
    assert status == 0, err
    tensors = {t["name"]: t for t in json.loads(out.read_text())["tensors"]}
    assert tensors["wide.weight"]["note"] == FLOAT64_GRID and tensors["normal.weight"]["note"] is None
    np.testing.assert_allclose(tensors["wide.weight"]["planes"], _float64_oracle(wide, 6), rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        tensors["normal.weight"]["planes"], paper_qubd(normal, 6, None), rtol=0, atol=1e-9
    )
    assert "quantised in float64" in stdout


def test_a_span_below_the_threshold_is_scored_and_noted(tmp_path, capsys):
    flat = torch.full((16, 16), 0.25) + torch.arange(256).reshape(16, 16) * 1e-12
    path = tmp_path / "model.safetensors"
    save_file({"flat.weight": flat, "normal.weight": torch.randn(8, 8)}, path)
    out = tmp_path / "r.json"
    status, stdout, err = run(capsys, "score", str(path), "--json", str(out))
    assert status == 0, err
    tensors = {t["name"]: t for t in json.loads(out.read_text())["tensors"]}
    assert tensors["flat.weight"]["note"] == TINY_SPAN and tensors["normal.weight"]["note"] is None
    np.testing.assert_allclose(tensors["flat.weight"]["planes"], paper_qubd(flat, 8, 99.9), rtol=0, atol=1e-9)
    assert "span below 1e-8" in stdout and "'flat.weight'" in stdout
    assert qubd.Report.from_json(out).tensors[0].note == TINY_SPAN


def test_an_error_about_a_tensor_names_the_tensor_and_its_file(tmp_path):
    bad = torch.randn(8, 8)
    bad[2, 2] = float("nan")
    path = tmp_path / "model.safetensors"
    save_file({"ok.weight": torch.randn(8, 8), "bad.weight": bad}, path)
    with pytest.raises(ReportError) as raised:
        qubd.score(path)
    message = str(raised.value)
    assert "tensor 'bad.weight'" in message and str(path) in message and "weights[" not in message


FORMULAS = ['=HYPERLINK("http://evil.example","click")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"]
# As a spreadsheet must see them: a quote first, control characters escaped (a bare CR would split rows).
NEUTRALISED = ['\'=HYPERLINK("http://evil.example","click")', "'+1+2", "'-2+3", "'@SUM(A1)", "'\\tx", "'\\rx"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_csv_neutralises_formula_names(tmp_path):
    tensors = {
        name: torch.randn(8, 8, generator=torch.Generator().manual_seed(i)) for i, name in enumerate(FORMULAS)
    }
    report = qubd.score(tensors, baseline="none")
    rows = list(csv.reader(io.StringIO(report.to_csv())))
    names = {row[0] for row in rows[1:]}
    assert set(NEUTRALISED) <= names
    assert not any(cell.startswith(FORMULA_STARTS) for row in rows for cell in row[:3])
    assert {t["name"] for t in report.to_dict()["tensors"]} == set(FORMULAS)  # JSON keeps them as they are


ESCAPE_NAME = "\x1b]0;owned\x07\x1b[2Jlayer.weight"


def test_the_terminal_never_gets_raw_escapes(tmp_path, capsys):
    bad = torch.randn(8, 8)
    bad[0, 0] = float("inf")
    path = tmp_path / "model.safetensors"
    save_file({ESCAPE_NAME: torch.randn(8, 8)}, path)
    status, out, err = run(capsys, "score", str(path), "--tensors")
    assert status == 0, err
    assert "\x1b" not in out and "\x07" not in out and "layer.weight" in out
    save_file({ESCAPE_NAME: bad}, path)
    status, _, err = run(capsys, "score", str(path))
    assert_one_line_error(status, err, "\\x1b]0;owned\\x07", "layer.weight")
    assert "\x1b" not in err and "\x07" not in err
