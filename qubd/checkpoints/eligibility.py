"""Which tensors are scored (docs/design.md 1.2 step 1), and why the others are not."""

from __future__ import annotations

import torch

from qubd.ops import validation

# dtype names (as ``entries.dtype_name`` writes them) of floating tensors, upcast as needed.
FLOAT_DTYPES = frozenset(
    {
        "float64",
        "float32",
        "float16",
        "bfloat16",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
    }
)
MIN_SIDE = 4


def skip_reason(shape: tuple[int, ...], dtype: str) -> str | None:
    """Why a tensor of this shape and dtype cannot be scored, or None when it can."""
    if dtype not in FLOAT_DTYPES:
        return f"not floating point ({dtype})"
    if len(shape) < 2:
        return f"{len(shape)}-D"
    rows = shape[0]
    cols = 1
    for side in shape[1:]:
        cols *= side
    if rows < MIN_SIDE or cols < MIN_SIDE:
        return f"side < {MIN_SIDE} (a {rows}x{cols} matrix)"
    return None


def reason_kind(reason: str) -> str:
    """The reason without its details, to count skipped tensors by kind: "not floating point", "1-D", ..."""
    return reason.split(" (")[0]


def as_scorable(w: torch.Tensor) -> torch.Tensor:
    """The tensor in a dtype the ops take (``qubd.ops.validation.FLOAT_DTYPES``, as they are): fp8 and
    other exotic floats are upcast to float32."""
    return w if w.dtype in validation.FLOAT_DTYPES else w.to(torch.float32)


def nonfinite_count(w: torch.Tensor) -> int:
    """How many values are NaN or +-Inf. Fast when there are none: one ``value_bounds`` pass (its
    bounds are finite exactly when every value is) decides; only then are the bad values counted."""
    if w.numel() == 0:
        return 0
    w = as_scorable(w)
    if bool(torch.ops.qubd.value_bounds([w]).isfinite().all()):
        return 0
    return int(w.numel() - torch.isfinite(w).sum().item())
