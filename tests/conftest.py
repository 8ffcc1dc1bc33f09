from __future__ import annotations

import os

import pytest
import torch

# Without a GPU, Triton kernels can only run in its interpreter, on CPU tensors. Triton reads this
# when its kernels are defined, so set it before qubd can import them.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import tests.oracles  # noqa: E402, F401  (loads pybdm with its table loader, once for the session)
from qubd.ops import dispatch  # noqa: E402

CPU_BACKENDS = dispatch.available_backends("cpu")


@pytest.fixture
def with_backend():
    """Call ``with_backend(name)`` to run the ops on that backend's kernels inside a test."""
    yield dispatch.use
    dispatch.use_environment()


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request, with_backend) -> str:
    """Runs the test once per backend that can run on CPU tensors."""
    with_backend(request.param)
    return request.param


def pytest_report_header(config) -> str:
    return f"qubd CPU backends: {', '.join(CPU_BACKENDS)}; torch {torch.__version__}"
