"""``weight_scores`` and ``weight_scores_batched`` as the spec writes them: ``ctm_score`` of the
dense ``weight_histograms``, for a backend whose kernels have no fused path (torch, Triton)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def scores_of_histograms(
    weight_histograms: Callable[..., torch.Tensor],
    weight_histograms_batched: Callable[..., torch.Tensor],
    ctm_score: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """A backend's ``weight_scores`` and ``weight_scores_batched`` from its histogram kernels."""

    def weight_scores(w: torch.Tensor, lo: float, delta: float, bits: int) -> torch.Tensor:
        return ctm_score(weight_histograms(w, lo, delta, bits))

    def weight_scores_batched(
        ws: Sequence[torch.Tensor], lo: Sequence[float], delta: Sequence[float], bits: int
    ) -> torch.Tensor:
        histograms = weight_histograms_batched(ws, lo, delta, bits)
        return ctm_score(histograms.flatten(0, 1)).view(len(ws), bits)

    return weight_scores, weight_scores_batched
