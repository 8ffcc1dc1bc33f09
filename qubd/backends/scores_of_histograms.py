"""``weight_scores``, ``weight_scores_batched`` and ``weight_scores_and_ones_batched`` as the spec
writes them, ``ctm_score`` of the dense ``weight_histograms`` (and the ones per plane counted from
them), for the backends without a fused kernel (torch, Triton)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from qubd.reference import plane_ones

WeightScores = Callable[[torch.Tensor, float, float, int], torch.Tensor]
BatchedWeightScores = Callable[[Sequence[torch.Tensor], Sequence[float], Sequence[float], int], torch.Tensor]
BatchedScoresAndOnes = Callable[
    [Sequence[torch.Tensor], Sequence[float], Sequence[float], int], tuple[torch.Tensor, torch.Tensor]
]


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


def with_ones_per_tensor(
    weight_histograms: Callable[..., torch.Tensor],
    ctm_score: Callable[[torch.Tensor], torch.Tensor],
    quantize_to_grid: plane_ones.Quantize,
) -> BatchedScoresAndOnes:
    """``weight_scores_and_ones_batched`` one tensor at a time: each tensor's histograms, their
    ``ctm_score``, and the ones per plane of the whole matrix (``qubd.reference.plane_ones``)."""

    def weight_scores_and_ones_batched(ws, lo, delta, bits):
        scores, ones = [], []
        for w, a, d in zip(ws, lo, delta, strict=True):
            histograms = weight_histograms(w, a, d, bits)
            scores.append(ctm_score(histograms))
            ones.append(plane_ones.matrix_ones(w, histograms, a, d, bits, quantize_to_grid))
        return torch.stack(scores), torch.stack(ones)

    return weight_scores_and_ones_batched


def with_ones_in_one_launch(
    weight_histograms_batched: Callable[..., torch.Tensor],
    ctm_score: Callable[[torch.Tensor], torch.Tensor],
    quantize_to_grid: plane_ones.Quantize,
) -> BatchedScoresAndOnes:
    """``weight_scores_and_ones_batched`` from the histograms of the whole batch in one call and one
    ``ctm_score`` over all their planes."""

    def weight_scores_and_ones_batched(ws, lo, delta, bits):
        histograms = weight_histograms_batched(ws, lo, delta, bits)
        scores = ctm_score(histograms.flatten(0, 1)).view(len(ws), bits)
        ones = [
            plane_ones.matrix_ones(w, h, a, d, bits, quantize_to_grid)
            for w, h, a, d in zip(ws, histograms, lo, delta, strict=True)
        ]
        return scores, torch.stack(ones)

    return weight_scores_and_ones_batched
