"""Which backend's kernels torch's dispatcher runs for the primitive ops on each device.

The torch reference is every primitive op's default kernel (``CompositeExplicitAutograd``); on top
of it each device gets the kernels of its fastest backend that loads (native on CPU, Triton on CUDA),
registered for that device's dispatch key, so a call goes from ``torch.ops.qubd.<op>`` straight to
the kernel. ``QUBD_BACKEND=native|triton|torch`` (read when qubd is imported) forces one backend on
every device; a device it has no kernels for then refuses the ops. :func:`use` does the same in a
running process (tests, benchmarks), and :func:`using` for a block.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from types import ModuleType

import torch

from qubd import backends
from qubd.backends import torch_reference
from qubd.ops import validation
from qubd.ops.library import PRIMITIVE_OPS

DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}
# Fastest first. Triton on CPU tensors runs only under TRITON_INTERPRET=1, so it is never a CPU
# default; without a CUDA build of torch there are no CUDA tensors, and Triton is not imported.
PREFERENCE = {
    "cpu": ("native", "torch"),
    "cuda": ("triton", "torch") if torch.backends.cuda.is_built() else ("torch",),
}


def _checked_kernels(backend: ModuleType) -> dict[str, Callable]:
    """A backend module's kernel of each primitive op (named as the op), after the op's checks."""
    return {
        op: validation.checked(validation.PRIMITIVE_CHECKS[op], getattr(backend, op)) for op in PRIMITIVE_OPS
    }


_default = torch.library.Library("qubd", "IMPL")
for _op, _kernel in _checked_kernels(torch_reference).items():
    _default.impl(_op, _kernel, "CompositeExplicitAutograd")

# Per device type: the backend whose kernels run, and the library holding their registration.
_routes: dict[str, tuple[str, torch.library.Library | None]] = {}


def unavailable(backend: str, device_type: str) -> str | None:
    """Why ``backend`` cannot run the ops on ``device_type`` tensors; None if it can."""
    try:
        module = backends.load(backend)
    except ImportError as err:
        return str(err)
    if device_type not in module.DEVICE_TYPES:
        return f"it has no kernels for {device_type} tensors"
    return None


def available_backends(device_type: str) -> list[str]:
    """The backends that can run every primitive op on ``device_type`` by default, fastest first."""
    return [b for b in PREFERENCE[device_type] if unavailable(b, device_type) is None]


def routed(device_type: str) -> str:
    """The backend whose kernels run the primitive ops on ``device_type`` tensors now."""
    return _routes[device_type][0]


def use(backend: str | None) -> None:
    """Run ``backend``'s kernels on every device (None: each device's fastest available)."""
    if backend is not None and backend not in backends.BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: one of {', '.join(backends.BACKENDS)}")
    for device_type in DISPATCH_KEYS:
        if backend is None:
            _route(device_type, available_backends(device_type)[0], {})
            continue
        reason = unavailable(backend, device_type)
        if reason is None:
            _route(device_type, backend, {})
            continue
        refusals = {
            op: _refusal(
                RuntimeError,
                f"QUBD_BACKEND={backend} has no kernel for {op} on {device_type} tensors: {reason}",
            )
            for op in PRIMITIVE_OPS
        }
        _route(device_type, backend, refusals)


@contextlib.contextmanager
def using(backend: str | None) -> Iterator[None]:
    """``use(backend)`` inside the block; after it, the routing ``QUBD_BACKEND`` says."""
    use(backend)
    try:
        yield
    finally:
        use_environment()


def use_environment() -> None:
    """Route as ``QUBD_BACKEND`` says (unset or empty: the defaults). An unknown name makes every
    primitive op raise a ValueError naming it."""
    backend = os.environ.get("QUBD_BACKEND", "").strip().lower() or None
    if backend is None or backend in backends.BACKENDS:
        use(backend)
        return
    message = f"QUBD_BACKEND={backend!r} is not one of {', '.join(backends.BACKENDS)}"
    for device_type in DISPATCH_KEYS:
        _route(device_type, backend, dict.fromkeys(PRIMITIVE_OPS, _refusal(ValueError, message)))


def _refusal(error: type[Exception], message: str) -> Callable:
    def refuse(*args):
        raise error(message)

    return refuse


def _route(device_type: str, backend: str, kernels: dict[str, Callable]) -> None:
    """Register ``kernels`` (default: ``backend``'s, checked) for ``device_type``, replacing the last."""
    _, previous = _routes.pop(device_type, (None, None))
    if previous is not None:
        previous._destroy()
    if not kernels and backend != "torch":  # the reference is the default kernel already
        kernels = _checked_kernels(backends.load(backend))
    library = None
    if kernels:
        library = torch.library.Library("qubd", "IMPL")
        for op, kernel in kernels.items():
            library.impl(op, kernel, DISPATCH_KEYS[device_type])
    _routes[device_type] = (backend, library)
