"""Every qubd op's schema, declared once with torch.library, with its fake and, for the composites,
its implementation.

Primitive ops (``order_statistics``, ``quantize_to_grid``, ``plane_histograms``,
``weight_histograms``, ``weight_histograms_batched``, ``ctm_score``) have a kernel per backend and
device (registered by ``qubd.ops.dispatch``). The public ops (``quantize``, ``bdm``, ``qubd``,
``qubd_batched``) are composites of the primitives, the same on every device. Each op checks its
arguments once, on entry (``qubd.ops.validation.checked``).
"""

from __future__ import annotations

import torch

from qubd.ctm.tables import BLOCK_CODES
from qubd.ops import validation
from qubd.range import quant_grid, value_range, value_ranges
from qubd.reference.quantize import code_dtype

lib = torch.library.Library("qubd", "DEF")

# Primitives: one kernel per backend and device.
lib.define("order_statistics(Tensor w, int[] ranks) -> Tensor")
lib.define("quantize_to_grid(Tensor w, float lo, float delta, int bits) -> Tensor")
lib.define("plane_histograms(Tensor q, int bits) -> Tensor")
lib.define("weight_histograms(Tensor w, float lo, float delta, int bits) -> Tensor")
lib.define("weight_histograms_batched(Tensor[] ws, float[] lo, float[] delta, int bits) -> Tensor")
lib.define("ctm_score(Tensor histograms) -> Tensor")
# Composites.
lib.define("quantize(Tensor w, int bits, float? clip=None) -> Tensor")
lib.define("bdm(Tensor x) -> Tensor")
lib.define("qubd(Tensor w, int bits=8, float? clip=None) -> Tensor")
lib.define("qubd_batched(Tensor[] ws, int bits=8, float? clip=None) -> Tensor")

PRIMITIVE_OPS = (
    "order_statistics",
    "quantize_to_grid",
    "plane_histograms",
    "weight_histograms",
    "weight_histograms_batched",
    "ctm_score",
)

# qubd_batched launches the histograms of at most this many bytes of int64 counts at once
# (8 planes: 32 tensors), which bounds its memory however many tensors it is given.
BATCH_HISTOGRAM_BYTES = 2**27


def _fake(op: str):
    """Register ``fn`` as ``op``'s fake, after the op's checks of shapes, dtypes and scalars."""

    def register(fn):
        checked = validation.checked(validation.SHAPE_CHECKS[op], fn)
        torch.library.register_fake(f"qubd::{op}", checked, lib=lib)
        return fn

    return register


@_fake("order_statistics")
def _(w, ranks):
    return w.new_empty(len(ranks), dtype=torch.float64 if w.dtype == torch.float64 else torch.float32)


@_fake("quantize_to_grid")
def _(w, lo, delta, bits):
    return torch.empty_like(w, dtype=code_dtype(bits))


@_fake("plane_histograms")
def _(q, bits):
    return q.new_empty(bits, BLOCK_CODES, dtype=torch.int64)


@_fake("weight_histograms")
def _(w, lo, delta, bits):
    return w.new_empty(bits, BLOCK_CODES, dtype=torch.int64)


@_fake("weight_histograms_batched")
def _(ws, lo, delta, bits):
    return ws[0].new_empty(len(ws), bits, BLOCK_CODES, dtype=torch.int64)


@_fake("ctm_score")
def _(histograms):
    return histograms.new_empty(histograms.shape[0], dtype=torch.float64)


def _grid(w: torch.Tensor, bits: int, clip: float | None):
    return quant_grid(*value_range(w, clip, torch.ops.qubd.order_statistics), bits)


def _quantize(w: torch.Tensor, bits: int, clip: float | None = None) -> torch.Tensor:
    grid = _grid(w, bits, clip)
    return torch.ops.qubd.quantize_to_grid(w.contiguous(), grid.lo, grid.delta, bits)


def _bdm(x: torch.Tensor) -> torch.Tensor:
    plane = x.to(torch.uint8).contiguous()
    return torch.ops.qubd.ctm_score(torch.ops.qubd.plane_histograms(plane, 1))[0]


def _qubd(w: torch.Tensor, bits: int = 8, clip: float | None = None) -> torch.Tensor:
    grid = _grid(w, bits, clip)
    hist = torch.ops.qubd.weight_histograms(w.flatten(1).contiguous(), grid.lo, grid.delta, bits)
    return torch.ops.qubd.ctm_score(hist)


def _qubd_batched(ws: list[torch.Tensor], bits: int = 8, clip: float | None = None) -> torch.Tensor:
    names = [f"weights[{i}]" for i in range(len(ws))]
    grids = []
    for (lo, hi), name in zip(
        value_ranges(ws, clip, torch.ops.qubd.order_statistics, names), names, strict=True
    ):
        try:
            grids.append(quant_grid(lo, hi, bits))
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    matrices = [w.flatten(1).contiguous() for w in ws]
    scores = torch.empty(len(ws), bits, dtype=torch.float64, device=ws[0].device)
    per_launch = max(1, BATCH_HISTOGRAM_BYTES // (bits * BLOCK_CODES * 8))
    for start in range(0, len(ws), per_launch):
        part = slice(start, start + per_launch)
        hist = torch.ops.qubd.weight_histograms_batched(
            matrices[part], [g.lo for g in grids[part]], [g.delta for g in grids[part]], bits
        )
        scores[part] = torch.ops.qubd.ctm_score(hist.flatten(0, 1)).view(-1, bits)
    return scores


COMPOSITES = {
    "quantize": (validation.check_quantize, _quantize),
    "bdm": (validation.check_bdm, _bdm),
    "qubd": (validation.check_qubd, _qubd),
    "qubd_batched": (validation.check_qubd_batched, _qubd_batched),
}
for _op, (_check, _impl) in COMPOSITES.items():
    lib.impl(_op, validation.checked(_check, _impl), "CompositeImplicitAutograd")
