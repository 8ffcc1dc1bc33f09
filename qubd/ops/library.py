"""Every qubd op's schema, declared once with torch.library.

Primitive ops (``order_statistics``, ``quantize_to_grid``, ``plane_histograms``,
``weight_histograms``, ``ctm_score``) run a backend's kernel for the tensor's device (see
``qubd.backends.registry``). The public ops (``quantize``, ``bdm``, ``qubd``) are composites of
the primitives, the same on every device.
"""

from __future__ import annotations

import torch

from qubd.backends.registry import PRIMITIVE_OPS, kernel_for
from qubd.ctm.tables import BLOCK_CODES
from qubd.ops import validation
from qubd.range import quant_grid, value_range
from qubd.reference.quantize import code_dtype

lib = torch.library.Library("qubd", "DEF")

# Primitives: one kernel per backend and device.
lib.define("order_statistics(Tensor w, int[] ranks) -> Tensor")
lib.define("quantize_to_grid(Tensor w, float lo, float delta, int bits) -> Tensor")
lib.define("plane_histograms(Tensor q, int bits) -> Tensor")
lib.define("weight_histograms(Tensor w, float lo, float delta, int bits) -> Tensor")
lib.define("ctm_score(Tensor histograms) -> Tensor")
# Composites.
lib.define("quantize(Tensor w, int bits, float? clip=None) -> Tensor")
lib.define("bdm(Tensor x) -> Tensor")
lib.define("qubd(Tensor w, int bits=8, float? clip=None) -> Tensor")


def _dispatching(op: str, device_type: str):
    check = validation.PRIMITIVE_CHECKS[op]

    def run(*args):
        check(*args)
        return kernel_for(op, device_type)(*args)

    run.__name__ = f"{op}_{device_type}"
    return run


for _op in PRIMITIVE_OPS:
    for _device_type, _key in (("cpu", "CPU"), ("cuda", "CUDA")):
        lib.impl(_op, _dispatching(_op, _device_type), _key)


@torch.library.register_fake("qubd::order_statistics")
def _(w, ranks):
    return w.new_empty(len(ranks), dtype=torch.float64 if w.dtype == torch.float64 else torch.float32)


@torch.library.register_fake("qubd::quantize_to_grid")
def _(w, lo, delta, bits):
    return torch.empty_like(w, dtype=code_dtype(bits))


@torch.library.register_fake("qubd::plane_histograms")
def _(q, bits):
    return q.new_empty(bits, BLOCK_CODES, dtype=torch.int64)


@torch.library.register_fake("qubd::weight_histograms")
def _(w, lo, delta, bits):
    return w.new_empty(bits, BLOCK_CODES, dtype=torch.int64)


@torch.library.register_fake("qubd::ctm_score")
def _(histograms):
    return histograms.new_empty(histograms.shape[0], dtype=torch.float64)


def _grid(w: torch.Tensor, bits: int, clip: float | None):
    validation.check_float_values(w)
    validation.check_bits(bits)
    validation.check_clip(clip)
    return quant_grid(*value_range(w, clip), bits)


def _quantize(w: torch.Tensor, bits: int, clip: float | None = None) -> torch.Tensor:
    grid = _grid(w, bits, clip)
    return torch.ops.qubd.quantize_to_grid(w.contiguous(), grid.lo, grid.delta, bits)


def _bdm(x: torch.Tensor) -> torch.Tensor:
    validation.check_binary(x)
    if x.ndim != 2:
        raise ValueError(f"bdm takes a 2D binary array, got shape {list(x.shape)}")
    plane = validation.as_matrix(x, "input").to(torch.uint8).contiguous()
    return torch.ops.qubd.ctm_score(torch.ops.qubd.plane_histograms(plane, 1))[0]


def _qubd(w: torch.Tensor, bits: int = 8, clip: float | None = None) -> torch.Tensor:
    matrix = validation.as_matrix(validation.check_tensor(w, "weights"), "weights")
    grid = _grid(w, bits, clip)
    hist = torch.ops.qubd.weight_histograms(matrix.contiguous(), grid.lo, grid.delta, bits)
    return torch.ops.qubd.ctm_score(hist)


lib.impl("quantize", _quantize, "CompositeImplicitAutograd")
lib.impl("bdm", _bdm, "CompositeImplicitAutograd")
lib.impl("qubd", _qubd, "CompositeImplicitAutograd")
