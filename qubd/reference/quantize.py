"""Quantise weights to integer codes on a grid (docs/design.md 1.2 step 3)."""

from __future__ import annotations

import torch

from qubd.range import compute_dtype


def code_dtype(bits: int) -> torch.dtype:
    """Codes of up to 8 bits are uint8, wider ones int32."""
    return torch.uint8 if bits <= 8 else torch.int32


def quantize_to_grid(w: torch.Tensor, lo: float, delta: float, bits: int) -> torch.Tensor:
    dtype = compute_dtype(w.dtype)
    x = w.to(dtype) - lo
    # Divide by a full-size tensor: torch turns a division by a scalar into a multiplication by its
    # reciprocal on some devices, which rounds differently.
    x = x / torch.full_like(x, delta)
    return torch.round(x).clamp_(0, 2**bits - 1).to(code_dtype(bits))
