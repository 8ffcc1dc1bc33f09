"""The 2-D view a conv kernel is scored as (its *layout*), before the ops, which score
``flatten(1)`` of what they are given.

The layouts and their names are those of the QuBD authors' ablation (saintslab/QuBD,
``flatten_ablation.py``, ``RESHAPES``); ``default`` is their ``get_bitplanes`` (``qbdm/qbdm.py``:
``weight_tensor.flatten(1)``) and qubd's own rule (docs/design.md 1.2 step 1). A layout moves the
values, never changes them, so the quantisation grid (from the values only) is the same for all.
As in the ablation, a layout applies to 4-D weights ``[C_out, C_in, H, W]`` (conv kernels); every
other tensor is scored as ``flatten(1)`` whatever the layout (``mosaic`` of a linear layer would be
its default view anyway).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

DEFAULT = "default"
CONV_DIMS = 4


def default(w: torch.Tensor) -> torch.Tensor:
    """``[C_out, C_in*H*W]``: each output channel a row (their ``w.flatten(1)``)."""
    return w.flatten(1)


def in_channel_rows(w: torch.Tensor) -> torch.Tensor:
    """``[C_in, C_out*H*W]``: each input channel a row (their ``w.permute(1, 0, 2, 3).flatten(1)``)."""
    return w.permute(1, 0, 2, 3).flatten(1)


def channels_last(w: torch.Tensor) -> torch.Tensor:
    """``[C_out, H*W*C_in]``: a row per output channel, the input channels innermost (their
    ``w.permute(0, 2, 3, 1).flatten(1)``)."""
    return w.permute(0, 2, 3, 1).flatten(1)


def square(w: torch.Tensor) -> torch.Tensor:
    """The row-major values as the closest-to-square ``r x (n / r)``: ``r`` the largest divisor of
    ``n`` that is at most ``sqrt(n)`` (their ``square``; a prime ``n`` gives one row)."""
    n = w.numel()
    rows = math.isqrt(n)
    while rows > 1 and n % rows:
        rows -= 1
    return w.reshape(rows, n // rows)


def mosaic(w: torch.Tensor) -> torch.Tensor:
    """``[C_out*H, C_in*W]``: the ``H x W`` kernels kept as 2-D patches in a grid, output channels
    down, input channels across (their ``w.permute(0, 2, 1, 3).reshape(C_out*H, C_in*W)``)."""
    c_out, c_in, h, k = w.shape
    return w.permute(0, 2, 1, 3).reshape(c_out * h, c_in * k)


LAYOUTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    f.__name__: f for f in (default, in_channel_rows, channels_last, square, mosaic)
}


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
    return layout


def arrange(w: torch.Tensor, layout: str = DEFAULT) -> torch.Tensor:
    """``w`` as the 2-D matrix of ``layout`` when it is 4-D (a conv kernel); else ``w`` unchanged
    (the ops score its ``flatten(1)``)."""
    check_layout(layout)
    if w.ndim != CONV_DIMS or layout == DEFAULT:
        return w
    return LAYOUTS[layout](w)


def arranged_shape(shape: tuple[int, ...], layout: str = DEFAULT) -> tuple[int, int]:
    """The (rows, columns) a tensor of ``shape`` is scored as under ``layout``."""
    if len(shape) < 2:
        raise ValueError(f"a tensor of shape {list(shape)} has no 2-D view")
    return tuple(arrange(torch.empty(shape, device="meta"), layout).flatten(1).shape)
