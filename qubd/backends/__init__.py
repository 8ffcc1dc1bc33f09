"""Kernel backends: the same primitive ops (schemas in ``qubd.ops.library``) per device.

Each backend module has one kernel per primitive op, a function named as the op, and
``DEVICE_TYPES``, the devices whose tensors they take. ``qubd.ops.dispatch`` registers them with
torch's dispatcher, which then runs the kernel of the tensor's device. Kernels trust their arguments: the op
layer validates them once, before any kernel runs.

* ``torch_reference``: the plain-torch spec (``qubd.reference``), every device, the default;
* ``native``: C++/OpenMP (``qubd._C``), CPU tensors;
* ``triton``: Triton, CUDA tensors (and CPU tensors under ``TRITON_INTERPRET=1``, how CI runs them).
"""

from __future__ import annotations

import importlib
from types import ModuleType

BACKENDS = ("native", "triton", "torch")
_MODULES = {
    "native": "qubd.backends.native",
    "triton": "qubd.backends.triton.kernels",
    "torch": "qubd.backends.torch_reference",
}


def load(backend: str) -> ModuleType:
    """A backend's module. Raises ImportError where it cannot run (no build, no Triton)."""
    return importlib.import_module(_MODULES[backend])
