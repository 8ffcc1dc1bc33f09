"""QuBD per plane together with the ones per plane over the whole matrix, from the primitive ops.

The "expected" baseline needs, per plane, how many of the matrix's cells are 1. They are derived
without another pass over the weights: the complete 4x4 blocks' ones are ``sum_code hist[code] *
popcount(code)`` over the histograms the score already computes, and the few cells no block covers
(the last ``rows % 4`` rows and ``cols % 4`` columns) are quantised on their own with the tensor's
grid (``quantize_to_grid``). The same primitives run on every backend, so the counts are
bit-identical across backends, and nothing of the weights' size is allocated.
"""

from __future__ import annotations

from functools import cache

import torch

from qubd.ctm.tables import BLOCK_CODES
from qubd.ops import library, validation
from qubd.range import QuantGrid, quant_grids

BLOCK_SIDE = 4


@cache
def _code_popcounts_cpu() -> torch.Tensor:
    codes = torch.arange(BLOCK_CODES, dtype=torch.int64)
    return sum((codes >> bit) & 1 for bit in range(16))


def block_ones(histograms: torch.Tensor) -> torch.Tensor:
    """int64 [..., bits] on the histograms' device: the ones in the blocks counted by int64
    ``histograms`` [..., bits, 65536] (``sum_code hist[code] * popcount(code)``)."""
    return (histograms * _code_popcounts_cpu().to(histograms.device)).sum(dim=-1)


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
    grids = quant_grids(ws, clip, bits, torch.ops.qubd.order_statistics, names)
    scores = torch.empty(len(ws), bits, dtype=torch.float64)
    ones = torch.empty(len(ws), bits, dtype=torch.int64)
    per_launch = max(1, library.BATCH_HISTOGRAM_BYTES // (bits * BLOCK_CODES * 8))
    for start in range(0, len(ws), per_launch):
        part = slice(start, start + per_launch)
        hist = torch.ops.qubd.weight_histograms_batched(
            matrices[part], [g.lo for g in grids[part]], [g.delta for g in grids[part]], bits
        )
        scores[part] = torch.ops.qubd.ctm_score(hist.flatten(0, 1)).view(-1, bits).cpu()
        ones[part] = block_ones(hist).cpu()
    for i, (matrix, grid) in enumerate(zip(matrices, grids, strict=True)):
        rows, cols = matrix.shape
        ones[i] += edge_ones(matrix, rows - rows % BLOCK_SIDE, cols - cols % BLOCK_SIDE, grid, bits)
    return scores, ones


def edge_ones(
    matrix: torch.Tensor, covered_rows: int, covered_cols: int, grid: QuantGrid, bits: int
) -> torch.Tensor:
    """int64 [bits] on the CPU: ones per plane, quantised on ``grid``, in the cells of ``matrix``
    outside its first ``covered_rows`` rows x ``covered_cols`` columns (those the complete 4x4 blocks
    cover; for a slice of a larger matrix, the part of the whole matrix's covered region it holds)."""
    edges = [matrix[covered_rows:, :], matrix[:covered_rows, covered_cols:]]
    total = torch.zeros(bits, dtype=torch.int64)
    shifts = torch.arange(bits, dtype=torch.int32, device=matrix.device)
    for edge in edges:
        if edge.numel() == 0:
            continue
        codes = torch.ops.qubd.quantize_to_grid(edge.contiguous(), grid.lo, grid.delta, bits)
        planes = (codes.reshape(-1, 1).to(torch.int32) >> shifts) & 1
        total += planes.sum(dim=0, dtype=torch.int64).cpu()
    return total
