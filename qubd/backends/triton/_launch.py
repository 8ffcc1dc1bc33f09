"""Launch helpers shared by the Triton kernels: interpreter check, grid sizing, grid scalars."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from functools import cache

import torch

from qubd.range import compute_dtype

# Persistent kernels: each program loops over tiles and publishes its private counts once at the end.
PROGRAMS_PER_SM = 4
# Under TRITON_INTERPRET=1 programs run one after another: a few are enough to exercise the tile loops.
INTERPRETER_PROGRAMS = 3


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def check_device(x: torch.Tensor) -> None:
    if x.device.type == "cpu" and not interpreting():
        raise RuntimeError("the triton backend runs on CPU tensors only under TRITON_INTERPRET=1")


def on_input_device(fn: Callable) -> Callable:
    """Run ``fn`` with its first argument's device current: Triton launches on the current device.
    The first argument is a tensor, or a sequence of tensors."""

    @functools.wraps(fn)
    def run(x, *args, **kwargs):
        first = x[0] if isinstance(x, (list, tuple)) and x else x
        if isinstance(first, torch.Tensor) and first.device.type == "cuda":
            with torch.cuda.device(first.device):
                return fn(x, *args, **kwargs)
        return fn(x, *args, **kwargs)

    return run


def num_programs(device: torch.device, n_tiles: int) -> int:
    """Programs of a persistent launch over ``n_tiles`` tiles."""
    if device.type == "cuda":
        cap = _multiprocessors(device.index if device.index is not None else torch.cuda.current_device())
        cap *= PROGRAMS_PER_SM
    else:
        cap = INTERPRETER_PROGRAMS
    return max(1, min(n_tiles, cap))


def grid_scalars(w: torch.Tensor, lo: float, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``lo`` and ``delta`` as 1-element device tensors of the compute dtype.

    Passed by pointer, not as kernel scalars: Triton types a Python float as fp32, and float64
    weights need float64 grid values.
    """
    dtype = compute_dtype(w.dtype)
    return (
        torch.tensor([lo], dtype=dtype, device=w.device),
        torch.tensor([delta], dtype=dtype, device=w.device),
    )


@cache
def _multiprocessors(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count
