"""k-ary QuBD: BDM of 2-bit quantized weights read as one 4-symbol sequence, beside the bit-plane sum.

The QuBD paper contrasts two estimators for 2-bit quantization: the sum of the two binary
bit-planes' 4x4 BDM (``qubd.ops.qubd(w, 2)``), and BDM computed directly on the 4-level codes with
the 4-symbol CTM table ``ctm-b4-d12``. :func:`kary_qubd` computes both on the same codes.

Exactly what the k-ary estimator computes:

1. ``Q = qubd.ops.quantize(w, 2, clip)``: codes 0..3 (docs/design.md, 1.2 steps 2-3);
2. ``W2 = Q.flatten(1)`` (as for QuBD; tensors with ndim < 2 or a side < 4 are refused, as QuBD
   skips them);
3. default (``per_row=False``): the rows of ``W2`` are concatenated (row-major, i.e.
   ``W2.reshape(-1)``) into one sequence, cut into non-overlapping blocks of 12 from its start
   (a block may span two rows); the last ``numel % 12`` codes are dropped (pybdm's ignore
   partition). This equals ``pybdm.BDM(ndim=1, nsymbols=4).bdm(W2.reshape(-1))``.
   With ``per_row=True`` each row is its own sequence (blocks never span rows; each row drops its
   last ``cols % 12`` codes) and the counts of all rows are pooled, i.e. pybdm's
   ``bdm.compute_bdm(*[bdm.decompose_and_count(row) for row in W2])``;
4. BDM = sum over distinct raw blocks of CTM(normalised block) + log2(count). Blocks missing from
   ``ctm-b4-d12`` (about 13% of the length-12 keys; frequent in random-looking codes) take pybdm's
   stand-in, the table's largest CTM + 1 (``missing_ctm``); their number is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qubd import ops as qops
from qubd.bdm.blocks import BlockGroup
from qubd.bdm.core import BDM
from qubd.bdm.counts import BlockCounts
from qubd.ops import validation

BLOCK = 12


@dataclass(frozen=True)
class KaryQuBD:
    """Both 2-bit estimators of one weight tensor.

    ``kary``: BDM of the codes with ``ctm-b4-d12``; ``planes``: per-plane binary BDM (plane 0 the
    least significant bit) and ``bitplane`` their sum; ``blocks``: number of 12-blocks scored;
    ``missing_blocks``: how many of them were missing from the table (imputed).
    """

    kary: float
    bitplane: float
    planes: tuple[float, float]
    blocks: int
    missing_blocks: int


def kary_counts(codes: torch.Tensor, bdm: BDM, per_row: bool = False) -> BlockCounts:
    """Counts of the 12-blocks of 2D ``codes`` (symbols 0..3) read as described in the module doc."""
    if per_row:
        if codes.shape[1] < BLOCK:
            raise ValueError(f"per_row needs rows of at least {BLOCK} codes, got {codes.shape[1]}")
        n = codes.shape[1] // BLOCK
        blocks = codes[:, : n * BLOCK].reshape(-1, BLOCK).to(torch.uint8)
        return bdm.count([BlockGroup((BLOCK,), blocks)])
    return bdm.decompose_and_count(codes.reshape(-1))


def kary_qubd(
    w: torch.Tensor,
    clip: float | None = None,
    *,
    per_row: bool = False,
    warn_if_missing_ctm: bool = False,
    missing_ctm: str = "max+1",
) -> KaryQuBD:
    """k-ary (4-symbol) BDM of the 2-bit quantization of ``w``, beside the bit-plane QuBD sum.

    ``clip``: percentile for a robust range (as ``qubd.ops.qubd``), None for min/max.
    """
    codes = qops.quantize(w, 2, clip)
    matrix = validation.as_matrix(codes, "weights")
    if matrix.numel() < BLOCK:
        raise ValueError(f"weights hold {matrix.numel()} values, fewer than one block of {BLOCK}")
    bdm = BDM(1, 4, warn_if_missing_ctm=warn_if_missing_ctm, missing_ctm=missing_ctm)
    counts = kary_counts(matrix, bdm, per_row)
    shape = (BLOCK,)
    ctm, found = bdm.ctm.values(shape, counts.codes[shape], counts.digits.get(shape))
    n = counts.counts[shape]
    kary = float((ctm + torch.log2(n.to(torch.float64))).sum())
    planes = qops.qubd(w, 2, clip)
    return KaryQuBD(
        kary=kary,
        bitplane=float(planes.sum()),
        planes=(float(planes[0]), float(planes[1])),
        blocks=int(n.sum()),
        missing_blocks=int(n[~found].sum()),
    )
