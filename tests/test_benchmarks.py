"""The benchmark scripts still run (CI runs no benchmark, so an API change would break them unseen):
each script of benchmarks/ at a tiny size, in a subprocess, exits 0 and prints its table. A smoke test:
no time is checked. The runs start together (a few at a time), so the module takes about as long as
its longest run rather than their sum."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
HELPERS = {"_machine.py"}  # imported by the scripts, not run
TIMEOUT_S = 300
PARALLEL_RUNS = 4
TMP, CHECKPOINT_DIR, CHECKPOINT_FILE = "{tmp}", "{checkpoint_dir}", "{checkpoint_file}"
PYTEST = ("-m", "pytest", "--benchmark-disable", "-p", "no:cacheprovider", "-q")
PYTEST_CASES = [
    f"benchmarks/bench_bdm_api.py::{case}"
    for case in (
        "test_qubd[1d-b2-ignore-bdm]",
        "test_pybdm[1d-b2-ignore-bdm]",
        "test_qubd_perturbation[perturb-1d-b2-ignore]",
        "test_pybdm_perturbation[perturb-1d-b2-ignore]",
        "test_qubd_kary",
    )
] + [
    f"benchmarks/bench_qubd.py::{case}"
    for case in ("test_qubd_native[256-None]", "test_qubd_native[256-99.9]", "test_pybdm_slice")
]


@dataclass(frozen=True)
class Smoke:
    """A tiny run of ``script``: the arguments after the Python executable (``TMP`` and the checkpoint
    placeholders filled in), what its stdout (and stderr) must contain, and the scripts it runs itself."""

    script: str
    args: tuple[str, ...]
    prints: tuple[str, ...]
    stderr_has: tuple[str, ...] = ()
    runs_too: tuple[str, ...] = ()


def _script(name: str) -> str:
    return str(BENCHMARKS / name)


# The longest first: the runs are started in this order.
SMOKES = {
    "bench_distributed.py scaling": Smoke(
        "bench_distributed.py",
        (_script("bench_distributed.py"), "scaling", CHECKPOINT_DIR, "--nproc", "2"),
        ("| 2 vs 1 processes |", "reports equal: True"),
    ),
    "bench_distributed.py tracking": Smoke(
        "bench_distributed.py",
        (_script("bench_distributed.py"), "tracking", "--nproc", "2", "--smoke"),
        ("| FSDP2 tracking step", "same total: True"),
    ),
    "bench_baselines.py": Smoke(
        "bench_baselines.py",
        (_script("bench_baselines.py"), "--preset", "tiny", "--rounds", "1", "--baselines", "reference")
        + ("--workdir", TMP),
        ("| baseline | time (median) |", "| none |", "| reference |"),
        runs_too=("make_sharded_checkpoint.py", "bench_score.py"),
    ),
    "bench_score.py": Smoke(
        "bench_score.py",
        (_script("bench_score.py"), "--generate-layers", "1", "--preset", "tiny", "--baseline", "expected")
        + ("--device", "cpu", "--workdir", TMP),
        ('"weights_per_second"', "| checkpoint | baseline |", "| expected x1 |"),
        stderr_has=("(tiny shapes, 1 layers)",),
        runs_too=("make_sharded_checkpoint.py",),
    ),
    "bench_dispatch.py": Smoke(
        "bench_dispatch.py",
        (_script("bench_dispatch.py"), str(REPO), "--rounds", "1"),
        ("median this/other", "qubd 4x4 clip", "qubd_batched 16 x 256x256 clip"),
    ),
    "bench_small_tensors.py": Smoke(
        "bench_small_tensors.py",
        (_script("bench_small_tensors.py"), str(REPO), "--rounds", "1", "--tensors", "100")
        + ("--other-tensors", "100"),
        ("qubd 4x4", "qubd_batched (100 | 100)", "qubd_batched of 100 4x4 tensors here"),
    ),
    "small_tensors.py": Smoke(
        "small_tensors.py",
        (_script("small_tensors.py"), str(REPO), "--rounds", "1", "--tensors", "50", "--other-tensors", "50"),
        ("case (per scored tensor)", "small, clip None", "50 4x4 tensors here, small, CLI"),
    ),
    "bench_bdm_api.py, bench_qubd.py": Smoke(  # one pytest run, one case of each benchmark function
        "bench_bdm_api.py",
        (*PYTEST, *PYTEST_CASES),
        ("8 passed",),
        runs_too=("bench_qubd.py",),
    ),
    "bench_baselines_minilm.py": Smoke(
        "bench_baselines_minilm.py",
        (_script("bench_baselines_minilm.py"), CHECKPOINT_FILE, "--rounds", "1"),
        ("| none |", "| expected |", "| shuffle |"),
    ),
    "core_speed.py": Smoke(
        "core_speed.py",
        (_script("core_speed.py"), "--sizes", "16", "--threads", "1", "--repeats", "1"),
        ("pybdm (1 thread, 8 planes)", "   16x16   "),
    ),
    "cpu_kernels.py": Smoke(
        "cpu_kernels.py",
        (_script("cpu_kernels.py"), "--side", "64", "--repeats", "1", "--small", "10"),
        ("64x64, 8 planes", "float32", "bfloat16", "4x4 tensors, 1 thread", "4x4 tensors at once"),
    ),
    "bench_distributed.py quantiles": Smoke(
        "bench_distributed.py",
        (_script("bench_distributed.py"), "quantiles", "--nproc", "2", "--numel", "20000", "--rounds", "1"),
        ("| float32 | native | ", "| bfloat16 | torch reference | "),
    ),
    "bench_distributed.py bytes": Smoke(
        "bench_distributed.py",
        (_script("bench_distributed.py"), "bytes", "--world", "2", "--preset", "tiny"),
        ("| world | bits | clip |", "| 2 | 8 | 99.9 |"),
    ),
}
GPU_SMOKE = Smoke(
    "bench_gpu.py",
    (_script("bench_gpu.py"), "--out", f"{TMP}/gpu", "--max-elements", "16e6", "--skip-7b", "--repeats", "1"),
    ("device-to-device copy", "wrote"),
)
NOT_RUN = {
    "gpu_session.sh": "drives a lent GPU machine (builds the extension, runs pytest -m cuda and "
    "bench_gpu.py, smoke-run here where CUDA is available)",
}


def _run(smoke: Smoke, values: dict[str, str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """The run, in its own process group: killed with all it started when it outlives TIMEOUT_S."""
    args = [sys.executable] + [arg.format(**values) for arg in smoke.args]
    proc = subprocess.Popen(
        args,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stderr += f"\n(killed after {TIMEOUT_S} s)"
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def _tiny_checkpoint(folder: Path) -> Path:
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    tensors = {
        "layers.0.proj.weight": torch.randn(32, 24, generator=g),
        "layers.1.proj.weight": torch.randn(16, 40, generator=g).to(torch.bfloat16),
        "norm.weight": torch.ones(24),
    }
    save_file(tensors, folder / "model.safetensors")
    return folder / "model.safetensors"


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory) -> dict[str, Future]:
    """The selected smoke runs, started together (``PARALLEL_RUNS`` at a time), by name."""
    tmp = tmp_path_factory.mktemp("benchmarks")
    checkpoint = _tiny_checkpoint(tmp / "checkpoint")
    values = {"tmp": str(tmp), "checkpoint_dir": str(checkpoint.parent), "checkpoint_file": str(checkpoint)}
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    if torch.cuda.is_available():
        env.pop("TRITON_INTERPRET", None)  # bench_gpu.py measures compiled kernels
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if item.module is request.module and "name" in getattr(getattr(item, "callspec", None), "params", {})
    }
    smokes = {**SMOKES, **({"bench_gpu.py": GPU_SMOKE} if torch.cuda.is_available() else {})}
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        yield {name: pool.submit(_run, smokes[name], values, env) for name in smokes if name in selected}
        pool.shutdown(cancel_futures=True)


def _check(result: subprocess.CompletedProcess, smoke: Smoke) -> None:
    command = " ".join(result.args[1:])
    assert result.returncode == 0, f"{command}: exit {result.returncode}\n{result.stderr[-3000:]}"
    for text in smoke.prints:
        assert text in result.stdout, f"{command}: {text!r} not printed:\n{result.stdout[-3000:]}"
    for text in smoke.stderr_has:
        assert text in result.stderr, f"{command}: {text!r} not on stderr:\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("name", list(SMOKES))
def test_benchmark_script_runs(runs, name):
    _check(runs[name].result(), SMOKES[name])


@pytest.mark.parametrize("name", ["bench_gpu.py"])
def test_gpu_benchmark_runs(runs, name):
    if not torch.cuda.is_available():
        pytest.skip("bench_gpu.py measures a CUDA device (and refuses the Triton interpreter)")
    _check(runs[name].result(), GPU_SMOKE)


def test_every_script_has_a_smoke_run():
    scripts = {p.name for p in BENCHMARKS.iterdir() if p.suffix in (".py", ".sh")} - HELPERS
    covered = {s.script for s in SMOKES.values()} | {GPU_SMOKE.script} | set(NOT_RUN)
    covered |= {name for s in SMOKES.values() for name in s.runs_too}
    assert scripts == covered, f"without a smoke run here: {sorted(scripts - covered)}"
