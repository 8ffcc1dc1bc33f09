"""Every qubd op's schema, declared once with torch.library, with its fake and, for the composites,
its implementation.

Primitive ops (``value_bounds``, ``order_statistics``, ``order_statistics_batched``,
``radix_digit_counts``, ``quantize_to_grid``, ``plane_histograms``, ``weight_histograms``,
``weight_histograms_batched``, ``ctm_score``, ``weight_scores``, ``weight_scores_batched``,
``weight_scores_and_ones_batched``) have a kernel per backend and device (registered by
``qubd.ops.dispatch``). The public ops
(``quantize``, ``bdm``, ``qubd``, ``qubd_batched``) are composites of the primitives, the same on
every device. Each op checks its arguments once, on entry (``qubd.ops.validation.checked``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from qubd.ctm.tables import BLOCK_CODES
from qubd.ops import validation
from qubd.range import QuantGrid, quant_grids
from qubd.reference.quantize import code_dtype

lib = torch.library.Library("qubd", "DEF")

# Primitives: one kernel per backend and device.
lib.define("value_bounds(Tensor[] ws) -> Tensor")
lib.define("order_statistics(Tensor w, int[] ranks) -> Tensor")
# order_statistics of each ws[i] at ranks[i], float64, one tensor's after another (sum of
# len(ranks[i]) values); NaN at every rank of a tensor holding NaN or Inf, so the caller names it.
lib.define("order_statistics_batched(Tensor[] ws, int[][] ranks) -> Tensor")
# One step of a radix selection whose counts add up over processes (a tensor sharded over ranks):
# int64 [len(prefixes), 2**digit_bits], row i the counts of the next digit_bits of the values'
# order-preserving keys among those whose top fixed_bits equal prefixes[i] (qubd.reference.radix_counts).
lib.define("radix_digit_counts(Tensor w, int[] prefixes, int fixed_bits, int digit_bits) -> Tensor")
lib.define("quantize_to_grid(Tensor w, float lo, float delta, int bits) -> Tensor")
lib.define("plane_histograms(Tensor q, int bits) -> Tensor")
lib.define("weight_histograms(Tensor w, float lo, float delta, int bits) -> Tensor")
lib.define("weight_histograms_batched(Tensor[] ws, float[] lo, float[] delta, int bits) -> Tensor")
lib.define("ctm_score(Tensor histograms) -> Tensor")
# ctm_score of weight_histograms (the spec), fused where a backend can skip the dense histograms.
lib.define("weight_scores(Tensor w, float lo, float delta, int bits) -> Tensor")
lib.define("weight_scores_batched(Tensor[] ws, float[] lo, float[] delta, int bits) -> Tensor")
# weight_scores_batched and, int64 [len(ws), bits], the ones per plane of each whole matrix (edge
# cells included; the "expected" baseline's input), from the same pass.
lib.define(
    "weight_scores_and_ones_batched(Tensor[] ws, float[] lo, float[] delta, int bits) -> (Tensor, Tensor)"
)
# Composites.
lib.define("quantize(Tensor w, int bits, float? clip=None) -> Tensor")
lib.define("bdm(Tensor x) -> Tensor")
lib.define("qubd(Tensor w, int bits=8, float? clip=None) -> Tensor")
lib.define("qubd_batched(Tensor[] ws, int bits=8, float? clip=None) -> Tensor")

PRIMITIVE_OPS = (
    "value_bounds",
    "order_statistics",
    "order_statistics_batched",
    "radix_digit_counts",
    "quantize_to_grid",
    "plane_histograms",
    "weight_histograms",
    "weight_histograms_batched",
    "ctm_score",
    "weight_scores",
    "weight_scores_batched",
    "weight_scores_and_ones_batched",
)

# qubd_batched scores at most as many tensors at once as have this many bytes of dense int64
# histograms (8 planes: 32 tensors), which bounds the memory of a backend that builds them
# however many tensors it is given.
BATCH_HISTOGRAM_BYTES = 2**27


def _fake(op: str):
    """Register ``fn`` as ``op``'s fake, after the op's checks of shapes, dtypes and scalars."""

    def register(fn):
        checked = validation.checked(validation.SHAPE_CHECKS[op], fn)
        torch.library.register_fake(f"qubd::{op}", checked, lib=lib)
        return fn

    return register


@_fake("value_bounds")
def _(ws):
    return ws[0].new_empty(len(ws), 2, dtype=torch.float64)


@_fake("order_statistics")
def _(w, ranks):
    return w.new_empty(len(ranks), dtype=torch.float64 if w.dtype == torch.float64 else torch.float32)


@_fake("order_statistics_batched")
def _(ws, ranks):
    return ws[0].new_empty(sum(len(r) for r in ranks), dtype=torch.float64)


@_fake("radix_digit_counts")
def _(w, prefixes, fixed_bits, digit_bits):
    return w.new_empty(len(prefixes), 1 << digit_bits, dtype=torch.int64)


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


@_fake("weight_scores")
def _(w, lo, delta, bits):
    return w.new_empty(bits, dtype=torch.float64)


@_fake("weight_scores_batched")
def _(ws, lo, delta, bits):
    return ws[0].new_empty(len(ws), bits, dtype=torch.float64)


@_fake("weight_scores_and_ones_batched")
def _(ws, lo, delta, bits):
    return (
        ws[0].new_empty(len(ws), bits, dtype=torch.float64),
        ws[0].new_empty(len(ws), bits, dtype=torch.int64),
    )


def _grid(w: torch.Tensor, bits: int, clip: float | None) -> QuantGrid:
    return quant_grids([w], clip, bits, torch.ops.qubd.order_statistics, [""])[0]


def _quantize(w: torch.Tensor, bits: int, clip: float | None = None) -> torch.Tensor:
    grid = _grid(w, bits, clip)
    return torch.ops.qubd.quantize_to_grid(w.contiguous(), grid.lo, grid.delta, bits)


def _bdm(x: torch.Tensor) -> torch.Tensor:
    plane = x.to(torch.uint8).contiguous()
    return torch.ops.qubd.ctm_score(torch.ops.qubd.plane_histograms(plane, 1))[0]


def _scored_matrix(w: torch.Tensor) -> torch.Tensor:
    # Detached: a score is not differentiable, and a float output of a parameter would otherwise
    # carry torch's "autograd kernel not registered" grad_fn.
    return w.detach().flatten(1).contiguous()


def _qubd(w: torch.Tensor, bits: int = 8, clip: float | None = None) -> torch.Tensor:
    grid = _grid(w, bits, clip)
    return torch.ops.qubd.weight_scores(_scored_matrix(w), grid.lo, grid.delta, bits)


def in_launches(op: Callable, matrices: list[torch.Tensor], grids: list[QuantGrid], bits: int) -> list:
    """``op(matrices, lo, delta, bits)`` (a batched scoring op) over consecutive slices of the
    tensors, as many at a time as a backend that builds dense histograms can hold in
    ``BATCH_HISTOGRAM_BYTES``; the outputs of the slices in order."""
    lo, delta = [g.lo for g in grids], [g.delta for g in grids]
    per_launch = max(1, BATCH_HISTOGRAM_BYTES // (bits * BLOCK_CODES * 8))
    return [
        op(
            matrices[start : start + per_launch],
            lo[start : start + per_launch],
            delta[start : start + per_launch],
            bits,
        )
        for start in range(0, len(matrices), per_launch)
    ]


def _qubd_batched(ws: list[torch.Tensor], bits: int = 8, clip: float | None = None) -> torch.Tensor:
    grids = quant_grids(ws, clip, bits, torch.ops.qubd.order_statistics)
    parts = in_launches(torch.ops.qubd.weight_scores_batched, [_scored_matrix(w) for w in ws], grids, bits)
    return parts[0] if len(parts) == 1 else torch.cat(parts)


COMPOSITES = {
    "quantize": (validation.check_quantize, _quantize),
    "bdm": (validation.check_bdm, _bdm),
    "qubd": (validation.check_qubd, _qubd),
    "qubd_batched": (validation.check_qubd_batched, _qubd_batched),
}
for _op, (_check, _impl) in COMPOSITES.items():
    lib.impl(_op, validation.checked(_check, _impl), "CompositeImplicitAutograd")
