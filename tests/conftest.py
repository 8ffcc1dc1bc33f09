from __future__ import annotations

import os

import pytest
import torch

import tests.oracles  # noqa: F401  (loads pybdm with its table loader, once for the session)
from qubd.backends import registry


def pytest_configure(config) -> None:
    # Without a GPU, Triton kernels can only run in its interpreter, on CPU tensors. Triton reads
    # this once, when first imported (the registry imports it lazily), so set it before any test.
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")


CPU_BACKENDS = registry.available_backends("cpu")


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request, monkeypatch) -> str:
    """Runs the test once per backend that can run on CPU tensors, forced with QUBD_BACKEND."""
    monkeypatch.setenv("QUBD_BACKEND", request.param)
    return request.param


@pytest.fixture
def with_backend(monkeypatch):
    """Call ``with_backend(name)`` to force QUBD_BACKEND inside a test."""

    def force(name: str) -> None:
        monkeypatch.setenv("QUBD_BACKEND", name)

    return force


def pytest_report_header(config) -> str:
    return f"qubd CPU backends: {', '.join(CPU_BACKENDS)}; torch {torch.__version__}"
