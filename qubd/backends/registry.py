"""Which kernel runs a primitive op on a given device.

Each backend (``torch`` reference, ``native`` C++, ``triton``, ``cuda``) registers the kernels it
has for a device type. The fastest available backend for the tensor's device is used, unless the
environment variable ``QUBD_BACKEND`` forces one (``native`` | ``triton`` | ``cuda`` | ``torch``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from functools import cache

# The primitive ops every backend may implement (schemas in qubd/ops/library.py).
PRIMITIVE_OPS = (
    "order_statistics",
    "quantize_to_grid",
    "plane_histograms",
    "weight_histograms",
    "weight_histograms_batched",
    "ctm_score",
)
BACKENDS = ("native", "triton", "cuda", "torch")
# Fastest first. Triton on a CPU tensor only runs under TRITON_INTERPRET=1, so it is never a CPU default.
PREFERENCE = {"cpu": ("native", "torch"), "cuda": ("cuda", "triton", "torch")}
_BACKEND_MODULES = {
    "torch": "qubd.backends.torch_reference",
    "native": "qubd.backends.native",
    "triton": "qubd.backends.triton",
    "cuda": "qubd.backends.cuda",
}

_kernels: dict[tuple[str, str, str], Callable] = {}


def register_kernel(op: str, backend: str, device_types: tuple[str, ...]) -> Callable[[Callable], Callable]:
    """Decorator: ``fn`` is ``backend``'s kernel for primitive ``op`` on tensors of ``device_types``."""
    if op not in PRIMITIVE_OPS:
        raise ValueError(f"unknown primitive op {op!r}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")

    def decorate(fn: Callable) -> Callable:
        for device_type in device_types:
            _kernels[(op, backend, device_type)] = fn
        return fn

    return decorate


@cache
def load_backend(backend: str) -> str | None:
    """Import a backend's module so that it registers its kernels; the reason if it cannot."""
    try:
        importlib.import_module(_BACKEND_MODULES[backend])
    except ImportError as err:
        return str(err)
    return None


def forced_backend() -> str | None:
    backend = os.environ.get("QUBD_BACKEND", "").strip().lower() or None
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"QUBD_BACKEND={backend!r} is not one of {', '.join(BACKENDS)}")
    return backend


def available_backends(device_type: str) -> list[str]:
    """Backends whose kernels can run every primitive op on ``device_type``, fastest first."""
    found = []
    for backend in PREFERENCE.get(device_type, ()):
        if load_backend(backend) is None and all(
            (op, backend, device_type) in _kernels for op in PRIMITIVE_OPS
        ):
            found.append(backend)
    return found


def kernel_for(op: str, device_type: str) -> Callable:
    """The kernel that runs ``op`` on ``device_type`` now (honours ``QUBD_BACKEND``)."""
    backend = forced_backend()
    if backend is not None:
        reason = load_backend(backend)
        kernel = _kernels.get((op, backend, device_type))
        if kernel is None:
            why = f": {reason}" if reason else ""
            raise RuntimeError(f"QUBD_BACKEND={backend} has no kernel for {op} on {device_type} tensors{why}")
        return kernel
    for backend in PREFERENCE.get(device_type, ()):
        if load_backend(backend) is None and (op, backend, device_type) in _kernels:
            return _kernels[(op, backend, device_type)]
    raise RuntimeError(f"no qubd kernel for {op} on {device_type} tensors")
