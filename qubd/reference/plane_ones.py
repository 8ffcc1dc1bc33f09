"""Ones per bit-plane of a quantised matrix (docs/design.md, the "expected" baseline's input): those in
the complete 4x4 blocks, ``sum_code hist[code] * popcount(code)`` over the block histograms, plus
those in the edge cells no complete block covers (the last ``rows % 4`` rows and ``cols % 4``
columns), quantised on their own with the matrix's grid. Nothing of the matrix's size is allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch

from qubd.ctm.tables import BLOCK_CODES

BLOCK_SIDE = 4
Quantize = Callable[[torch.Tensor, float, float, int], torch.Tensor]


@cache
def _code_popcounts_cpu() -> torch.Tensor:
    codes = torch.arange(BLOCK_CODES, dtype=torch.int64)
    return sum((codes >> bit) & 1 for bit in range(16))


def block_ones(histograms: torch.Tensor) -> torch.Tensor:
    """int64 [..., bits] on the histograms' device: the ones in the blocks counted by int64
    ``histograms`` [..., bits, 65536] (``sum_code hist[code] * popcount(code)``)."""
    return (histograms * _code_popcounts_cpu().to(histograms.device)).sum(dim=-1)


def edge_ones(
    matrix: torch.Tensor,
    covered_rows: int,
    covered_cols: int,
    lo: float,
    delta: float,
    bits: int,
    quantize: Quantize,
) -> torch.Tensor:
    """int64 [bits] on the matrix's device: ones per plane, quantised by ``quantize`` (a
    ``quantize_to_grid``) on the grid ``lo``, ``delta``, in the cells of ``matrix`` outside its first
    ``covered_rows`` rows x ``covered_cols`` columns (those the complete 4x4 blocks cover; for a slice
    of a larger matrix, the part of the whole matrix's covered region it holds)."""
    edges = [matrix[covered_rows:, :], matrix[:covered_rows, covered_cols:]]
    total = torch.zeros(bits, dtype=torch.int64, device=matrix.device)
    shifts = torch.arange(bits, dtype=torch.int32, device=matrix.device)
    for edge in edges:
        if edge.numel() == 0:
            continue
        codes = quantize(edge.contiguous(), lo, delta, bits)
        planes = (codes.reshape(-1, 1).to(torch.int32) >> shifts) & 1
        total += planes.sum(dim=0, dtype=torch.int64)
    return total


def matrix_ones(
    matrix: torch.Tensor, histograms: torch.Tensor, lo: float, delta: float, bits: int, quantize: Quantize
) -> torch.Tensor:
    """int64 [bits] on the matrix's device: the ones per plane of the whole ``matrix``, whose block
    ``histograms`` [bits, 65536] are given, edge cells included."""
    rows, cols = matrix.shape
    covered_rows, covered_cols = rows - rows % BLOCK_SIDE, cols - cols % BLOCK_SIDE
    edges = edge_ones(matrix, covered_rows, covered_cols, lo, delta, bits, quantize)
    return block_ones(histograms).to(matrix.device) + edges
