"""``qubd doctor`` / ``python -m qubd``: versions, backends, the parity self-test (which must catch a
broken kernel) and throughput; ``qubd --version``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import qubd
from qubd import doctor
from qubd.backends import native
from qubd.ops import dispatch
from tests.test_cli import run, run_python_m_qubd

REPO = Path(__file__).resolve().parents[1]
# Two small cases (8-bit uint8 and 12-bit int32 codes) keep the tests quick.
FEW_CASES = (((20, 36), torch.float32, 8, 99.9), ((16, 17), torch.float16, 12, None))


@pytest.fixture
def few_cases(monkeypatch):
    monkeypatch.setattr(doctor, "PARITY_CASES", FEW_CASES)


@pytest.fixture
def broken_native_histograms():
    """The native plane histograms with one block moved from code 0 to code 1 (same total count)."""

    original = native.plane_histograms

    def broken(q, bits):
        hist = original(q, bits)
        hist[0, 0] -= 1
        hist[0, 1] += 1
        return hist

    native.plane_histograms = broken  # the doctor routes to the native module's kernels afresh
    yield
    native.plane_histograms = original
    dispatch.use_environment()


def test_version(capsys):
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.strip() == f"qubd {qubd.__version__}"


def test_doctor_reports_versions_backends_and_agreement(capsys, few_cases, monkeypatch):
    monkeypatch.delenv("QUBD_BACKEND", raising=False)
    status, out, _ = run(capsys, "doctor", "--seconds", "0.05")
    assert status == 0, out
    assert f"qubd: {qubd.__version__}" in out and f"torch: {torch.__version__}" in out
    assert "triton: " in out and "cuda: " in out and "native extension: " in out
    available = dispatch.available_backends("cpu")
    assert f"cpu: available {', '.join(available)}; ops use {available[0]}" in out
    assert "native on cpu: ok, " in out and " M weights/s" in out
    assert out.strip().endswith("all backends agree")


def test_doctor_names_the_forced_backend(capsys, few_cases, monkeypatch):
    monkeypatch.setenv("QUBD_BACKEND", "torch")
    status, out, _ = run(capsys, "doctor", "--seconds", "0")
    assert status == 0 and "QUBD_BACKEND=torch" in out and "ops use torch" in out
    assert os.environ["QUBD_BACKEND"] == "torch"  # the self-test restores what it forced


def test_doctor_fails_on_a_broken_kernel(capsys, few_cases, broken_native_histograms):
    status, out, _ = run(capsys, "doctor", "--seconds", "0.05")
    assert status == 1
    assert "native on cpu: FAILED" in out and "plane_histograms differs from the torch reference" in out
    assert "FAILED: a backend disagrees with the reference" in out
    assert "native on cpu: ok" not in out
    assert out.count("plane_histograms differs") == len(FEW_CASES)  # found in every case


def test_python_m_qubd_without_arguments_runs_doctor(monkeypatch):
    seen = []
    monkeypatch.setattr("qubd.cli.main", lambda argv: seen.append(argv) or 0)
    monkeypatch.setattr(sys, "argv", ["python -m qubd"])
    with pytest.raises(SystemExit) as exit_:
        run_python_m_qubd()
    assert exit_.value.code == 0 and seen == [["doctor"]]


def test_python_m_qubd_runs_the_command():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "qubd", "--version"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == f"qubd {qubd.__version__}"
