"""Quantisation to the grid (docs/design.md 1.2 step 3): the per-element math, and the elementwise kernel."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from qubd.backends.triton._launch import check_device, grid_scalars, on_input_device
from qubd.reference.quantize import code_dtype

QUANTIZE_BLOCK = 4096


@triton.jit
def quantize_codes(w, lo, delta, MAX_CODE: tl.constexpr, F64: tl.constexpr):
    """int32 codes ``clamp(round_half_even((w - lo) / delta), 0, MAX_CODE)`` of loaded weights ``w``.

    ``w`` is upcast in registers (bf16/fp16 -> fp32). The division is correctly rounded: ``div_rn``
    for fp32 (Triton's ``/`` is an approximate division), IEEE ``/`` for fp64; there is no multiply,
    so nothing can be contracted into an FMA. Clamping before rounding gives the same codes, since
    the bounds are integers.
    """
    if F64:
        y = tl.minimum(tl.maximum((w.to(tl.float64) - lo) / delta, 0.0), MAX_CODE)
        # Adding 2**52 rounds half to even at the units place; the integer is in the low mantissa bits.
        return ((y + 4503599627370496.0).to(tl.int64, bitcast=True) - 0x4330000000000000).to(tl.int32)
    else:
        y = tl.minimum(tl.maximum(tl.div_rn(w.to(tl.float32) - lo, delta), 0.0), MAX_CODE)
        # Adding 2**23 rounds half to even at the units place; the integer is in the low mantissa bits.
        return (y + 8388608.0).to(tl.int32, bitcast=True) - 0x4B000000


@triton.jit
def _quantize_kernel(w_ptr, lo_ptr, delta_ptr, out_ptr, n, MAX_CODE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    w = tl.load(w_ptr + offs, mask=mask, other=0.0)
    code = quantize_codes(
        w, tl.load(lo_ptr), tl.load(delta_ptr), MAX_CODE, w_ptr.dtype.element_ty == tl.float64
    )
    tl.store(out_ptr + offs, code.to(out_ptr.dtype.element_ty), mask=mask)


@on_input_device
def quantize_to_grid(w: torch.Tensor, lo: float, delta: float, bits: int) -> torch.Tensor:
    """Codes of ``w`` on the grid, same shape; uint8 for bits <= 8, else int32."""
    check_device(w)
    src = w.contiguous()
    out = torch.empty(src.shape, dtype=code_dtype(bits), device=src.device)
    n = src.numel()
    if n == 0:
        return out
    lo_t, delta_t = grid_scalars(src, lo, delta)
    grid = (triton.cdiv(n, QUANTIZE_BLOCK),)
    _quantize_kernel[grid](
        src, lo_t, delta_t, out, n, MAX_CODE=2**bits - 1, BLOCK=QUANTIZE_BLOCK, enable_fp_fusion=False
    )
    return out
