"""``qubd doctor``: what this installation runs on, and whether every backend gives the reference's
numbers. Versions (qubd, torch, Triton, CUDA, the native extension), the backends each device type can
use and the one it does use, a parity self-test of every available backend against the plain-torch
reference on random tensors (codes and block histograms bit-identical, QuBD equal to 1e-12), and a
throughput figure per backend. Like ``python -m bitsandbytes``: run it first when something looks off.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from qubd import backends
from qubd.ops import dispatch

REFERENCE = "torch"
# (shape, dtype, bits, clip): sizes a backend handles differently (ragged edges, small and wide
# codes, every input dtype, both ranges), each small enough that the reference is quick.
PARITY_CASES = (
    ((64, 48), torch.float32, 8, None),
    ((37, 70), torch.float32, 8, 99.9),
    ((6, 5, 4, 4), torch.float64, 4, 99.0),
    ((50, 41), torch.float16, 12, None),
    ((24, 96), torch.bfloat16, 2, 99.9),
)
THROUGHPUT_SHAPE = (1024, 1024)


@dataclass(frozen=True)
class BackendCheck:
    device_type: str
    backend: str
    problems: list[str]
    weights_per_second: float | None


def versions() -> dict[str, str]:
    """Name -> version (or why it is missing) of qubd and what it runs on."""
    import qubd

    found = {"qubd": qubd.__version__, "torch": torch.__version__}
    try:
        import triton

        found["triton"] = triton.__version__
    except ImportError:
        found["triton"] = "not installed (no GPU kernels)"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        found["cuda"] = f"{torch.version.cuda}, {torch.cuda.device_count()} device(s), {name}"
    else:
        build = f"torch built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only torch"
        found["cuda"] = f"not available ({build})"
    try:
        from qubd import _C

        found["native extension"] = f"{_C.__file__}, {_C.get_num_threads()} OpenMP threads"
    except ImportError as err:
        found["native extension"] = f"not loaded ({err})"
    return found


def device_types() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def backends_in_use(device_type: str) -> tuple[list[str], str | None]:
    """The backends available for ``device_type`` (fastest first) and the one the ops use there."""
    return dispatch.available_backends(device_type), dispatch.routed(device_type)


def unavailable_reasons() -> dict[str, str]:
    """Backends that cannot be loaded at all, with the reason."""
    reasons = {}
    for name in backends.BACKENDS:
        try:
            backends.load(name)
        except ImportError as err:
            reasons[name] = str(err)
    return reasons


def forced(backend: str) -> AbstractContextManager[None]:
    """Run the ops on ``backend``; afterwards, the routing ``QUBD_BACKEND`` says."""
    return dispatch.using(backend)


def _outputs(ws: list[torch.Tensor], bits: int, clip: float | None) -> dict[str, list[torch.Tensor]]:
    """What every public op gives for ``ws``, on the CPU (codes, histograms, QuBD one by one and batched)."""
    from qubd import ops

    codes = [ops.quantize(w, bits, clip) for w in ws]
    return {
        "quantize": [c.cpu() for c in codes],
        "plane_histograms": [ops.plane_histograms(c, bits).cpu() for c in codes],
        "qubd": [ops.qubd(w, bits, clip).cpu() for w in ws],
        "qubd_batched": [ops.qubd_batched(ws, bits, clip).cpu()],
    }


def _random_cases(device_type: str, seed: int = 0) -> list[tuple[str, list[torch.Tensor], int, float | None]]:
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for shape, dtype, bits, clip in PARITY_CASES:
        ws = [torch.randn(shape, generator=generator).to(dtype).to(device_type) for _ in range(2)]
        name = f"{'x'.join(map(str, shape))} {str(dtype).removeprefix('torch.')}, {bits} bits, clip {clip}"
        cases.append((name, ws, bits, clip))
    return cases


def parity_problems(backends: list[str], device_type: str) -> dict[str, list[str]]:
    """How each of ``backends`` disagrees with the torch reference on random tensors on ``device_type``
    (the reference runs once per case)."""
    problems: dict[str, list[str]] = {backend: [] for backend in backends}
    for case, ws, bits, clip in _random_cases(device_type):
        with forced(REFERENCE):
            expected = _outputs(ws, bits, clip)
        for backend in backends:
            try:
                with forced(backend):
                    got = _outputs(ws, bits, clip)
            except Exception as err:  # a crashing backend is a finding, not the end of the report
                problems[backend].append(f"{case}: {type(err).__name__}: {err}")
                continue
            for op, want in expected.items():
                exact = op in ("quantize", "plane_histograms")
                if not all(_same(a, b, exact) for a, b in zip(want, got[op], strict=True)):
                    problems[backend].append(f"{case}: {op} differs from the torch reference")
    return problems


def _same(a: torch.Tensor, b: torch.Tensor, exact: bool) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return torch.equal(a, b) if exact else torch.allclose(a, b, rtol=1e-12, atol=0.0)


def throughput(backend: str, device_type: str, seconds: float) -> float:
    """Weights per second of ``ops.qubd`` (8 bits, min/max range) on a 1024x1024 float32 tensor,
    repeated for about ``seconds`` of wall time (at least once, after one warm-up call)."""
    from qubd import ops

    w = torch.randn(THROUGHPUT_SHAPE, generator=torch.Generator().manual_seed(1)).to(device_type)
    sync: Callable[[], None] = torch.cuda.synchronize if device_type == "cuda" else (lambda: None)
    with forced(backend):
        ops.qubd(w)
        sync()
        calls, started = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - started < seconds:
            ops.qubd(w)
            calls += 1
        sync()
        elapsed = time.perf_counter() - started
    return calls * w.numel() / elapsed


def check_backends(seconds: float = 1.0) -> list[BackendCheck]:
    """Parity against the reference and throughput of every available backend on every device type
    present; the reference itself is timed, not compared."""
    checks = []
    for device_type in device_types():
        available, _ = backends_in_use(device_type)
        problems = parity_problems([b for b in available if b != REFERENCE], device_type)
        for backend in available:
            found = problems.get(backend, [])
            speed = None if found or seconds <= 0 else throughput(backend, device_type, seconds)
            checks.append(BackendCheck(device_type, backend, found, speed))
    return checks


def run_doctor(print_line: Callable[[str], None] = print, seconds: float = 1.0) -> int:
    """Print the diagnosis; 0 when every backend agrees with the reference, 1 otherwise."""
    print_line("qubd doctor")
    for name, version in versions().items():
        print_line(f"  {name}: {version}")
    dispatch.use_environment()
    forced_name = os.environ.get("QUBD_BACKEND", "").strip().lower() or None
    print_line("backends" + (f" (QUBD_BACKEND={forced_name} forces one)" if forced_name else ""))
    for device_type in device_types():
        available, used = backends_in_use(device_type)
        print_line(f"  {device_type}: available {', '.join(available) or 'none'}; ops use {used or 'none'}")
    for name, reason in unavailable_reasons().items():
        print_line(f"  backend {name}: not loaded ({reason})")
    print_line(f"self-test against the {REFERENCE} reference, then {seconds:g} s of ops.qubd on 1024x1024")
    failed = False
    for check in check_backends(seconds):
        where = f"  {check.backend} on {check.device_type}:"
        if check.problems:
            failed = True
            print_line(f"{where} FAILED, {len(check.problems)} disagreement(s)")
            for problem in check.problems:
                print_line(f"    {problem}")
        else:
            verdict = "the reference" if check.backend == REFERENCE else "ok"
            speed = check.weights_per_second
            print_line(f"{where} {verdict}" + ("" if speed is None else f", {speed / 1e6:,.1f} M weights/s"))
    print_line("FAILED: a backend disagrees with the reference" if failed else "all backends agree")
    return 1 if failed else 0
