"""The ``qubd`` command: demo, score, plot; every failure one line on stderr, non-zero, no traceback."""

from __future__ import annotations

import gc
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from qubd.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def run_python_m_qubd() -> None:
    """``python -m qubd`` in this process (sys.argv as set by the caller). Its ``gc.freeze()`` is
    undone after: frozen objects are never collected, so the test process would keep everything made
    so far (triton's then shows as leaks at exit)."""
    try:
        runpy.run_module("qubd", run_name="__main__")
    finally:
        gc.unfreeze()


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    assert status != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("qubd: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "model.safetensors"
    save_file(
        {
            "smooth.weight": torch.linspace(-1, 1, 32 * 24).reshape(32, 24),
            "noise.weight": torch.randn(24, 20, generator=g),
            "noise.bias": torch.randn(24, generator=g),
        },
        path,
    )
    return path


def test_score_prints_a_table_and_writes_outputs(capsys, checkpoint, tmp_path):
    out_json, out_csv, out_png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    status, out, err = run(
        capsys, "score", str(checkpoint), "--baseline", "shuffle", "--repeats", "2", "--tensors",
        "--json", str(out_json), "--csv", str(out_csv), "--plot", str(out_png), "--binary",
        "--compress", "gzip",
    )  # fmt: skip
    assert status == 0, err
    assert "ratio %" in out and "7 (MSB)" in out and "total" in out
    assert "random arrangement of the same values" in out and "Rule:" in out and "Not scored: 1 1-D" in out
    data = json.loads(out_json.read_text())
    assert data["repeats"] == 2 and [t["name"] for t in data["tensors"]][:2] == ["noise.bias", "noise.weight"]
    assert out_csv.read_text().startswith("name,shape,dtype,plane,bdm")
    assert out_png.read_bytes()[:8] == PNG_MAGIC


def test_score_options_reach_the_report(capsys, checkpoint, tmp_path):
    out_json = tmp_path / "r.json"
    args = ["score", str(checkpoint), "--bits", "4", "--clip", "none", "--baseline", "none"]
    status, _, err = run(
        capsys, *args, "--include", "*.weight", "--exclude", "noise", "--json", str(out_json)
    )
    assert status == 0, err
    data = json.loads(out_json.read_text())
    assert (data["bits"], data["clip"], data["baseline"]) == (4, None, "none")
    assert [t["name"] for t in data["tensors"]] == ["smooth.weight"] and data["counts"]["excluded"] == 2
    assert data["planes"][0]["ratio"] is None


def test_plot_command(capsys, checkpoint, tmp_path):
    report = tmp_path / "r.json"
    assert run(capsys, "score", str(checkpoint), "--quiet", "--json", str(report))[0] == 0
    status, _, err = run(capsys, "plot", str(report), "-o", str(tmp_path / "r.png"))
    assert status == 0, err
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_MAGIC
    status, _, err = run(capsys, "plot", str(checkpoint), "-o", str(tmp_path / "x.png"))
    assert_one_line_error(status, err, "not a JSON file")
    assert not (tmp_path / "x.png").exists()


def test_demo(capsys):
    status, out, err = run(capsys, "demo")
    assert status == 0, err
    assert "QuBD of the demo MLP" in out and "7 (MSB)" in out and "random arrangement" in out


def _nan_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "nan.safetensors"
    w = torch.randn(8, 8)
    w[2, 3] = float("nan")
    save_file({"bad.weight": w, "good.weight": torch.randn(8, 8)}, path)
    return path


def test_nan_weights_fail_unless_skipped_and_nothing_is_written(capsys, tmp_path):
    path = _nan_checkpoint(tmp_path)
    out_json = tmp_path / "r.json"
    status, _, err = run(capsys, "score", str(path), "--json", str(out_json))
    assert_one_line_error(status, err, "'bad.weight'", "NaN/Inf", "--nonfinite skip")
    assert not out_json.exists()
    status, out, err = run(capsys, "score", str(path), "--nonfinite", "skip", "--json", str(out_json))
    assert status == 0, err
    assert json.loads(out_json.read_text())["tensors"][0]["skipped"] == "non-finite values (1 NaN/Inf)"


def _truncated(tmp_path: Path) -> Path:
    path = tmp_path / "cut.safetensors"
    save_file({"w": torch.randn(64, 64)}, path)
    path.write_bytes(path.read_bytes()[:-100])
    return path


def _pickle_with_code(tmp_path: Path) -> Path:
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.randn(8, 8), "f": print}, path)  # a global outside the weights-only allowlist
    return path


def _no_eligible(tmp_path: Path) -> Path:
    path = tmp_path / "biases.safetensors"
    save_file({"b": torch.randn(8), "ids": torch.arange(16).reshape(4, 4)}, path)
    return path


def _not_a_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not weights")
    return path


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda tmp: tmp / "missing.safetensors", ["missing.safetensors: no such file or directory"]),
        (_not_a_checkpoint, ["notes.txt: not a checkpoint"]),
        (_truncated, ["cut.safetensors: not a valid safetensors file, truncated or corrupt"]),
        (_pickle_with_code, ["evil.pt: refused to load", "never executes pickled code"]),
        (_no_eligible, ["no eligible tensors", "1 1-D", "1 not floating point"]),
    ],
)
def test_errors_are_one_line(capsys, tmp_path, make, fragments):
    out_json = tmp_path / "r.json"
    status, _, err = run(capsys, "score", str(make(tmp_path)), "--json", str(out_json))
    assert_one_line_error(status, err, *fragments)
    assert not out_json.exists()


def test_usage_errors_are_one_line(capsys, checkpoint, tmp_path):
    assert_one_line_error(*run(capsys, "score", str(checkpoint), "--bits", "x")[::2], "--bits")
    assert_one_line_error(*run(capsys, "score")[::2], "PATH")
    assert_one_line_error(*run(capsys, "score", str(checkpoint), "--bits", "0")[::2], "bits must be")
    status, _, err = run(capsys, "score", str(checkpoint), "--json", str(tmp_path / "no" / "r.json"))
    assert_one_line_error(status, err, "does not exist")
    status, _, err = run(capsys, "score", str(checkpoint), "--baseline", "reinit")
    assert_one_line_error(status, err, "needs an nn.Module")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_cuda_is_one_line(capsys, checkpoint):
    assert_one_line_error(
        *run(capsys, "score", str(checkpoint), "--device", "cuda")[::2], "CUDA is not available"
    )


def test_installed_command_prints_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("QUBD_TRACEBACK", None)
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from qubd.cli import main; sys.exit(main())", "score",
         str(_truncated(tmp_path))],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("qubd: error: ") and result.stderr.count("\n") == 1


# --- review fixes ----------------------------------------------------------------------------------


def test_closed_stdout_still_writes_the_outputs_and_exits_quietly(checkpoint, tmp_path):
    """``qubd score x --json r.json | head -1``: the reader goes away before the table is printed."""
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("QUBD_TRACEBACK", None)
    command = [sys.executable, "-c", "import sys; from qubd.cli import main; sys.exit(main())", "score",
               str(checkpoint), "--tensors", "--json", str(out_json), "--csv", str(out_csv)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # like head: nobody reads the table
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    written = [f"the JSON report to {out_json}", f"the CSV of QuBD per tensor and plane to {out_csv}"]
    assert err.decode().splitlines() == [f"qubd: wrote {what}" for what in written]
    assert json.loads(out_json.read_text())["format"] == "qubd-report"
    assert out_csv.read_text().startswith("name,")


def _no_scoring(*args, **kwargs):
    raise AssertionError("scored although an output could not be written")


@pytest.mark.parametrize("plot", ["out.xyz", "out.PNGX"])
def test_unsupported_plot_format_fails_before_scoring(capsys, checkpoint, tmp_path, monkeypatch, plot):
    import qubd.report

    monkeypatch.setattr(qubd.report, "score_source", _no_scoring)
    out_json = tmp_path / "r.json"
    status, _, err = run(
        capsys, "score", str(checkpoint), "--json", str(out_json), "--plot", str(tmp_path / plot)
    )
    assert_one_line_error(status, err, plot, "cannot write a", "matplotlib writes", "png")
    assert not out_json.exists() and not (tmp_path / plot).exists()
    status, _, err = run(capsys, "plot", str(out_json), "-o", str(tmp_path / plot))
    assert_one_line_error(status, err, "cannot write a")


def test_outputs_are_written_all_or_none(capsys, checkpoint, tmp_path, monkeypatch):
    import qubd.report.plots

    def broken_plot(*args, **kwargs):
        raise RuntimeError("the plot broke")

    monkeypatch.setattr(qubd.report.plots, "plot_report", broken_plot)
    out_json, out_csv, out_png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    out_csv.write_text("old")
    status, _, err = run(
        capsys,
        "score",
        str(checkpoint),
        "--json",
        str(out_json),
        "--csv",
        str(out_csv),
        "--plot",
        str(out_png),
    )
    assert_one_line_error(status, err, "the plot broke")
    assert not out_json.exists() and not out_png.exists() and out_csv.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "r.csv"]  # no temp files


def test_choices_come_from_the_report_options():
    from qubd.cli import _build_parser
    from qubd.report import options

    parser = _build_parser()
    score = parser._subparsers._group_actions[0].choices["score"]
    actions = {a.dest: a for a in score._actions}
    assert actions["compress"].choices is options.COMPRESSORS
    assert actions["device"].choices is options.DEVICES
    assert actions["nonfinite"].choices is options.NONFINITE_POLICIES
    assert tuple(actions["baseline"].choices) == (*options.BASELINES, *options.BASELINE_ALIASES)


def test_each_written_file_is_named_once_on_stderr(capsys, checkpoint, tmp_path):
    outs = {"json": tmp_path / "r.json", "csv": tmp_path / "r.csv", "plot": tmp_path / "r.png"}
    status, out, err = run(capsys, "score", str(checkpoint), *[f"--{k}={v}" for k, v in outs.items()])
    assert status == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    for path, line in zip(outs.values(), lines, strict=True):
        assert line.startswith("qubd: wrote ") and line.endswith(str(path)), line
    assert "qubd: wrote" not in out
    status, out, err = run(capsys, "plot", str(outs["json"]), "-o", str(tmp_path / "again.png"))
    assert status == 0 and out == "" and err.strip() == f"qubd: wrote the plot to {tmp_path / 'again.png'}"


def test_data_on_stdout_stays_clean_of_messages(capsys, checkpoint, tmp_path):
    status, out, err = run(capsys, "score", str(checkpoint), "--json", "-", "--csv", str(tmp_path / "r.csv"))
    assert status == 0, err
    json.loads(out)  # nothing but the report
    assert "wrote the JSON report to standard output" in err and str(tmp_path / "r.csv") in err


def test_demo_names_a_duration_that_is_not_zero(capsys):
    status, out, err = run(capsys, "demo", "--steps", "0")
    assert status == 0, err
    assert " in 0.0 s" not in out
    assert re.search(r" in (\d+ ms|< 1 ms|\d+\.\d+ s) \(", out), out
