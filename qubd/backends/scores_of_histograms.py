"""``weight_scores`` and ``weight_scores_batched`` as the spec writes them, ``ctm_score`` of the
dense ``weight_histograms``, for the backends without a fused kernel (torch, Triton)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

WeightScores = Callable[[torch.Tensor, float, float, int], torch.Tensor]
BatchedWeightScores = Callable[[Sequence[torch.Tensor], Sequence[float], Sequence[float], int], torch.Tensor]


def per_tensor(
    weight_histograms: Callable[..., torch.Tensor], ctm_score: Callable[[torch.Tensor], torch.Tensor]
) -> WeightScores:
    def weight_scores(w: torch.Tensor, lo: float, delta: float, bits: int) -> torch.Tensor:
        return ctm_score(weight_histograms(w, lo, delta, bits))

    return weight_scores


def one_launch(
    weight_histograms_batched: Callable[..., torch.Tensor], ctm_score: Callable[[torch.Tensor], torch.Tensor]
) -> BatchedWeightScores:
    """The histograms of the whole batch in one call, then one ctm_score over all their planes."""

    def weight_scores_batched(ws, lo, delta, bits):
        histograms = weight_histograms_batched(ws, lo, delta, bits)
        return ctm_score(histograms.flatten(0, 1)).view(len(ws), bits)

    return weight_scores_batched


def one_at_a_time(weight_scores: WeightScores) -> BatchedWeightScores:
    """``weight_scores`` of each tensor, stacked."""

    def weight_scores_batched(ws, lo, delta, bits):
        return torch.stack([weight_scores(w, a, d, bits) for w, a, d in zip(ws, lo, delta, strict=True)])

    return weight_scores_batched
