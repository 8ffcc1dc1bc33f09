"""The BDM sum over a code histogram: sum over present codes of CTM(code) + log2(count)."""

from __future__ import annotations

import torch


def ctm_score(histograms: torch.Tensor) -> torch.Tensor:
    """BDM of each plane from its 4x4 block-code histogram.

    ``histograms``: integer [planes, 65536] counts (as ``qubd.ops.plane_histograms`` returns).
    Returns float64 [planes], computed on the histograms' device.
    """
    if histograms.dtype.is_floating_point or histograms.dtype.is_complex or histograms.dtype == torch.bool:
        raise ValueError(f"histograms must hold integer counts, got {histograms.dtype}")
    return torch.ops.qubd.ctm_score(histograms.to(torch.int64).contiguous())
