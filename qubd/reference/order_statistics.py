"""Exact order statistics of a tensor (sorted values at given 0-based ranks)."""

from __future__ import annotations

import torch

from qubd.range import compute_dtype


def order_statistics(w: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    flat = w.reshape(-1).to(compute_dtype(w.dtype))
    if not torch.isfinite(flat).all():
        raise ValueError("weights contain NaN or Inf values")
    return torch.stack([torch.kthvalue(flat, r + 1).values for r in ranks]) if ranks else flat[:0]
