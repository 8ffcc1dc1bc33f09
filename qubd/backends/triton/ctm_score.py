"""The BDM sum over block-code histograms on the device: CTM gather + log2 of the counts, float64."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from qubd.backends.triton._launch import check_device, on_input_device
from qubd.ctm.tables import BLOCK_CODES, ctm16

SCORE_BLOCK = 2048
# Programs per plane; each sums a fixed slice of the codes, so the result does not depend on scheduling.
SCORE_SPLIT = 8


@triton.jit
def _ctm_score_kernel(
    hist_ptr, ctm_ptr, partial_ptr, CODES: tl.constexpr, SPLIT: tl.constexpr, BLOCK: tl.constexpr
):
    plane = tl.program_id(0).to(tl.int64)
    part = tl.program_id(1)
    acc = tl.zeros([BLOCK], dtype=tl.float64)
    for start in tl.range(part * (CODES // SPLIT), (part + 1) * (CODES // SPLIT), BLOCK):
        code = start + tl.arange(0, BLOCK)
        count = tl.load(hist_ptr + plane * CODES + code).to(tl.float64)
        term = tl.load(ctm_ptr + code) + tl.log2(tl.maximum(count, 1.0))
        acc += tl.where(count > 0, term, 0.0)
    tl.store(partial_ptr + plane * SPLIT + part, tl.sum(acc))


@on_input_device
def ctm_score(histograms: torch.Tensor) -> torch.Tensor:
    """float64 [planes]: sum over codes with count n > 0 of CTM(code) + log2(n)."""
    check_device(histograms)
    hist = histograms.contiguous()
    planes = hist.shape[0]
    partial = torch.empty(planes, SCORE_SPLIT, dtype=torch.float64, device=hist.device)
    if planes:
        table = ctm16(hist.device)
        _ctm_score_kernel[(planes, SCORE_SPLIT)](
            hist, table, partial, CODES=BLOCK_CODES, SPLIT=SCORE_SPLIT, BLOCK=SCORE_BLOCK, num_warps=8
        )
    return partial.sum(dim=1)
