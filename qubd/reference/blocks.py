"""Bit-planes, 4x4 block codes and their histograms (docs/design.md 1.1, and 1.2 steps 4-5).

Cell (r, c) of a 4x4 block is bit ``15 - (4r + c)`` of its 16-bit code, so the code written in
binary is pybdm's row-major key string. Rows/columns past the last full block are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from qubd.ctm.tables import BLOCK_CODES
from qubd.reference.quantize import quantize_to_grid

CELL_BITS = (2 ** (15 - torch.arange(16, dtype=torch.int32))).reshape(4, 4)


def block_codes(plane: torch.Tensor) -> torch.Tensor:
    """int64 codes of the full 4x4 blocks of a 2D 0/1 plane, in row-major block order."""
    rows, cols = plane.shape[0] // 4, plane.shape[1] // 4
    blocks = plane[: rows * 4, : cols * 4].to(torch.int32).reshape(rows, 4, cols, 4).transpose(1, 2)
    return (blocks * CELL_BITS.to(plane.device)).sum(dim=(2, 3)).reshape(-1).to(torch.int64)


def plane_histograms(q: torch.Tensor, bits: int) -> torch.Tensor:
    """int64 [bits, 65536]: histogram of block codes of each bit-plane of integer codes ``q`` (2D)."""
    q = q.to(torch.int32)
    return torch.stack(
        [torch.bincount(block_codes((q >> p) & 1), minlength=BLOCK_CODES) for p in range(bits)]
    )


def weight_histograms(w: torch.Tensor, lo: float, delta: float, bits: int) -> torch.Tensor:
    return plane_histograms(quantize_to_grid(w, lo, delta, bits), bits)


def weight_histograms_batched(
    ws: Sequence[torch.Tensor], lo: Sequence[float], delta: Sequence[float], bits: int
) -> torch.Tensor:
    """int64 [len(ws), bits, 65536]: ``weight_histograms`` of each 2D weight matrix."""
    return torch.stack([weight_histograms(w, a, d, bits) for w, a, d in zip(ws, lo, delta, strict=True)])
