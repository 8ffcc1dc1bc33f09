"""The native C++/OpenMP kernels (``qubd._C``), for CPU tensors."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from qubd import _C
from qubd.ctm.tables import BLOCK_CODES, ctm16
from qubd.range import compute_dtype
from qubd.reference.quantize import code_dtype

DEVICE_TYPES = ("cpu",)

# Dtype numbering shared with src/qubd/elements.h (enum class DType).
DTYPE_CODES = {
    torch.float32: 0,
    torch.float16: 1,
    torch.bfloat16: 2,
    torch.float64: 3,
    torch.uint8: 4,
    torch.int32: 5,
    torch.int16: 6,
    torch.int64: 7,
    torch.bool: 8,
}


def _dtype_code(t: torch.Tensor) -> int:
    if t.dtype not in DTYPE_CODES:
        raise ValueError(f"the native backend does not take {t.dtype} tensors")
    return DTYPE_CODES[t.dtype]


def _histograms(bits: int) -> torch.Tensor:
    return torch.empty(bits, BLOCK_CODES, dtype=torch.int64)


def value_bounds(ws: Sequence[torch.Tensor]) -> torch.Tensor:
    # One native pass per tensor: min and max of the order-preserving keys, the finite check included.
    ws = [w.contiguous() for w in ws]
    bounds = torch.empty(len(ws), 2, dtype=torch.float64)
    _C.value_bounds(
        [w.data_ptr() for w in ws], [_dtype_code(w) for w in ws], [w.numel() for w in ws], bounds.data_ptr()
    )
    return bounds


def order_statistics(w: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    w = w.contiguous()
    values = _C.order_statistics(w.data_ptr(), _dtype_code(w), w.numel(), list(ranks))
    return torch.tensor(values, dtype=compute_dtype(w.dtype))


def order_statistics_batched(ws: Sequence[torch.Tensor], ranks: Sequence[list[int]]) -> torch.Tensor:
    # One native call for all tensors: a small tensor's selection costs microseconds, less than a call.
    ws = [w.contiguous() for w in ws]
    out = torch.empty(sum(len(r) for r in ranks), dtype=torch.float64)
    pointers, counts = [w.data_ptr() for w in ws], [w.numel() for w in ws]
    _C.order_statistics_batched(pointers, [_dtype_code(w) for w in ws], counts, ranks, out.data_ptr())
    return out


def radix_digit_counts(
    w: torch.Tensor, prefixes: list[int], fixed_bits: int, digit_bits: int
) -> torch.Tensor:
    w = w.contiguous()
    counts = torch.empty(len(prefixes), 1 << digit_bits, dtype=torch.int64)
    _C.radix_digit_counts(
        w.data_ptr(), _dtype_code(w), w.numel(), list(prefixes), fixed_bits, digit_bits, counts.data_ptr()
    )
    return counts


def quantize_to_grid(w: torch.Tensor, lo: float, delta: float, bits: int) -> torch.Tensor:
    w = w.contiguous()
    codes = torch.empty(w.shape, dtype=code_dtype(bits))
    _C.quantize_to_grid(w.data_ptr(), _dtype_code(w), w.numel(), lo, delta, bits, codes.data_ptr())
    return codes


def plane_histograms(q: torch.Tensor, bits: int) -> torch.Tensor:
    q = q.contiguous()
    hist = _histograms(bits)
    _C.code_histograms(q.data_ptr(), _dtype_code(q), q.shape[0], q.shape[1], bits, hist.data_ptr())
    return hist


def weight_histograms(w: torch.Tensor, lo: float, delta: float, bits: int) -> torch.Tensor:
    return weight_histograms_batched([w], [lo], [delta], bits)[0]


def weight_histograms_batched(
    ws: Sequence[torch.Tensor], lo: Sequence[float], delta: Sequence[float], bits: int
) -> torch.Tensor:
    # On the CPU a call costs microseconds next to the pass over the weights: one after another.
    hist = torch.empty(len(ws), bits, BLOCK_CODES, dtype=torch.int64)
    for i, (w, a, d) in enumerate(zip(ws, lo, delta, strict=True)):
        w = w.contiguous()
        _C.weight_histograms(
            w.data_ptr(), _dtype_code(w), w.shape[0], w.shape[1], a, d, bits, hist[i].data_ptr()
        )
    return hist


def weight_scores(w: torch.Tensor, lo: float, delta: float, bits: int) -> torch.Tensor:
    return weight_scores_batched([w], [lo], [delta], bits)[0]


def weight_scores_batched(
    ws: Sequence[torch.Tensor], lo: Sequence[float], delta: Sequence[float], bits: int
) -> torch.Tensor:
    scores = torch.empty(len(ws), bits, dtype=torch.float64)
    _weight_scores(ws, lo, delta, bits, scores, None)
    return scores


def weight_scores_and_ones_batched(
    ws: Sequence[torch.Tensor], lo: Sequence[float], delta: Sequence[float], bits: int
) -> tuple[torch.Tensor, torch.Tensor]:
    scores = torch.empty(len(ws), bits, dtype=torch.float64)
    ones = torch.empty(len(ws), bits, dtype=torch.int64)
    _weight_scores(ws, lo, delta, bits, scores, ones)
    return scores, ones


def _weight_scores(
    ws: Sequence[torch.Tensor],
    lo: Sequence[float],
    delta: Sequence[float],
    bits: int,
    scores: torch.Tensor,
    ones: torch.Tensor | None,
) -> None:
    """Fills ``scores`` [len(ws), bits] and, unless None, ``ones`` [len(ws), bits], row i from ws[i]."""
    # Up to 4096 blocks the kernel sorts each plane's codes (microseconds for a small tensor);
    # above, it builds the dense histograms and sums them as ctm_score does: the same doubles.
    table = ctm16("cpu").data_ptr()
    out, out_ones = scores.data_ptr(), 0 if ones is None else ones.data_ptr()
    row_bytes = bits * 8  # float64 and int64 rows alike
    for i, (w, a, d) in enumerate(zip(ws, lo, delta, strict=True)):
        w = w.contiguous()
        rows, cols = w.shape
        ones_row = 0 if ones is None else out_ones + i * row_bytes
        _C.weight_scores(
            w.data_ptr(), _dtype_code(w), rows, cols, a, d, bits, table, out + i * row_bytes, ones_row
        )


def ctm_score(histograms: torch.Tensor) -> torch.Tensor:
    histograms = histograms.contiguous()
    table = ctm16("cpu")
    scores = torch.empty(histograms.shape[0], dtype=torch.float64)
    _C.ctm_score(histograms.data_ptr(), histograms.shape[0], table.data_ptr(), scores.data_ptr())
    return scores
