"""The BDM sum over code histograms (docs/design.md 1.1)."""

from __future__ import annotations

import torch

from qubd.ctm.tables import ctm16


def ctm_score(histograms: torch.Tensor) -> torch.Tensor:
    """float64 [planes]: sum over codes with count n > 0 of CTM(code) + log2(n), on the input's device."""
    counts = histograms.to(torch.float64)
    terms = torch.where(counts > 0, ctm16(histograms.device) + torch.log2(counts.clamp(min=1)), 0.0)
    return terms.sum(dim=1)
