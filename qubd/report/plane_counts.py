"""QuBD per plane together with the ones per plane over the whole matrix, from one primitive op.

The "expected" baseline needs, per plane, how many of the matrix's cells are 1.
``weight_scores_and_ones_batched`` gives them with the scores from the same pass over the weights
(``qubd.reference.plane_ones`` is the spec: the blocks' ones from their codes, plus the few edge
cells no block covers); on the CPU a matrix of few blocks is scored without dense histograms. The
counts are bit-identical across backends, and nothing of the weights' size is allocated.
"""

from __future__ import annotations

import torch

from qubd.ops import library, validation
from qubd.range import quant_grids


def scores_and_ones(
    ws: list[torch.Tensor], bits: int, clip: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """For tensors ``ws`` (all on one device): float64 [len(ws), bits], the QuBD per plane (the numbers
    ``ops.qubd_batched`` gives), and int64 [len(ws), bits], the ones of each plane over the whole
    ``flatten(1)`` matrix, edge cells included; both on the CPU."""
    validation.check_bits(bits)
    validation.check_clip(clip)
    names = [f"weights[{i}]" for i in range(len(ws))]
    matrices = []
    for w, name in zip(ws, names, strict=True):
        validation.check_float_values(w, name)
        matrices.append(validation.as_matrix(w, name).contiguous())
    validation.check_one_device(ws)
    with validation.checked_by_caller():  # the grids are valid by construction
        grids = quant_grids(ws, clip, bits, torch.ops.qubd.order_statistics, names)
        parts = library.in_launches(torch.ops.qubd.weight_scores_and_ones_batched, matrices, grids, bits)
    scores = torch.cat([s for s, _ in parts]).cpu()
    ones = torch.cat([o for _, o in parts]).cpu()
    return scores, ones
