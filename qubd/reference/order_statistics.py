"""Exact order statistics of a tensor (sorted values at given 0-based ranks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from qubd.range import compute_dtype


def order_statistics(w: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    flat = w.reshape(-1).to(compute_dtype(w.dtype))
    if not torch.isfinite(flat).all():
        raise ValueError("weights contain NaN or Inf values")
    return torch.stack([torch.kthvalue(flat, r + 1).values for r in ranks]) if ranks else flat[:0]


def order_statistics_batched(ws: Sequence[torch.Tensor], ranks: Sequence[list[int]]) -> torch.Tensor:
    """``order_statistics(ws[i], ranks[i])`` of each tensor as float64, one after another; NaN at
    every rank of a tensor holding NaN or Inf. Queued without a device sync."""
    parts = []
    for w, wanted in zip(ws, ranks, strict=True):
        if not wanted:
            continue
        flat = w.reshape(-1).to(compute_dtype(w.dtype))
        values = torch.stack([torch.kthvalue(flat, r + 1).values for r in wanted]).to(torch.float64)
        parts.append(torch.where(torch.isfinite(flat).all(), values, torch.nan))
    return torch.cat(parts) if parts else torch.empty(0, dtype=torch.float64, device=ws[0].device)
