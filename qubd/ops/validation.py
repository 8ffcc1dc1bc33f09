"""Argument checks of the qubd ops: bad input is a ValueError (TypeError for a wrong type) naming the
argument or tensor and the problem.

Every op checks its arguments once, when it is entered from outside qubd (:func:`checked`): the ops
it calls itself, and the kernels below them, trust what the outer op checked and computed. The
fakes (``register_fake`` in ``qubd.ops.library``) run the same checks of shapes, dtypes and scalars;
checks that read tensor values (codes in range, counts not negative) run on real tensors only.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable, Iterator, Sequence

import torch

from qubd.ctm.tables import BLOCK_CODES

MAX_BITS = 16
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
# The integer codes every backend reads (bool: one bit-plane).
CODE_DTYPES = (torch.bool, torch.uint8, torch.int16, torch.int32, torch.int64)

# True while a qubd op runs whose arguments were checked on entry.
_checked_by_caller = contextvars.ContextVar("qubd_checked_by_caller", default=False)


def checked(check: Callable[..., None], fn: Callable) -> Callable:
    """``fn`` whose arguments ``check`` validates first, unless an enclosing qubd op already has."""

    @functools.wraps(fn)
    def run(*args):
        if _checked_by_caller.get():
            return fn(*args)
        check(*args)
        with checked_by_caller():
            return fn(*args)

    return run


@contextlib.contextmanager
def checked_by_caller() -> Iterator[None]:
    """The qubd ops called in the block skip their checks: their caller, qubd code, checked what it
    passes them (or computed it), as an op entered from outside does for the ops it calls."""
    token = _checked_by_caller.set(True)
    try:
        yield
    finally:
        _checked_by_caller.reset(token)


def check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an integer in 1..{MAX_BITS}, got {bits!r}")


def check_clip(clip: float | None) -> None:
    if clip is None:
        return
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 < clip <= 100:
        raise ValueError(f"clip must be a percentile in (0, 100] or None, got {clip!r}")


def check_tensor(x: object, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.numel() == 0:
        raise ValueError(f"{what} is empty (shape {list(x.shape)})")
    return x


def as_matrix(x: torch.Tensor, what: str) -> torch.Tensor:
    """docs/design.md 1.2 step 1: flatten(1) to 2D; refuse what has no full 4x4 block."""
    if x.ndim < 2:
        raise ValueError(f"{what} must have at least 2 dimensions, got shape {list(x.shape)}")
    m = x.flatten(1)
    if m.shape[0] < 4 or m.shape[1] < 4:
        raise ValueError(
            f"{what} of shape {list(x.shape)} (as a {m.shape[0]}x{m.shape[1]} matrix) "
            "has a side < 4, so it holds no 4x4 block"
        )
    return m


def check_binary(x: torch.Tensor) -> None:
    check_tensor(x, "input")
    if x.dtype == torch.bool:
        return
    if x.dtype.is_complex:
        raise ValueError(f"input must be binary (bool or 0/1), got {x.dtype}")
    if not ((x == 0) | (x == 1)).all():
        raise ValueError("input must be binary: every value 0 or 1")


def check_matrix(x: torch.Tensor, what: str) -> None:
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2D matrix, got shape {list(x.shape)}")


def check_float_values(w: object, what: str = "weights") -> None:
    check_tensor(w, what)
    if w.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{what} must be float32, float16, bfloat16 or float64, got {w.dtype}")


def check_one_device(ws: Sequence[torch.Tensor]) -> None:
    devices = {w.device for w in ws}
    if len(devices) > 1:
        raise ValueError(f"all tensors of a batch must be on one device, got {sorted(map(str, devices))}")


def check_grid(lo: float, delta: float, what: str = "") -> None:
    """A grid from ``qubd.range.quant_grid``: finite ``lo``; ``delta`` > 0 (+inf: every code 0)."""
    if not math.isfinite(lo):
        raise ValueError(f"{what}lo must be a finite number, got {lo!r}")
    if not delta > 0:  # also NaN
        raise ValueError(f"{what}delta must be > 0 (+inf for a constant tensor), got {delta!r}")


# The public composite ops' checks.


def check_quantize(w: torch.Tensor, bits: int, clip: float | None = None) -> None:
    check_bits(bits)
    check_clip(clip)
    check_float_values(w)


def check_qubd(w: torch.Tensor, bits: int = 8, clip: float | None = None) -> None:
    check_bits(bits)
    check_clip(clip)
    as_matrix(check_tensor(w, "weights"), "weights")
    check_float_values(w)


def check_qubd_batched(ws: Sequence[torch.Tensor], bits: int = 8, clip: float | None = None) -> None:
    check_bits(bits)
    check_clip(clip)
    for i, w in enumerate(ws):
        check_float_values(w, f"weights[{i}]")
        as_matrix(w, f"weights[{i}]")
    check_one_device(ws)


def check_bdm(x: torch.Tensor) -> None:
    check_binary(x)
    if x.ndim != 2:
        raise ValueError(f"bdm takes a 2D binary array, got shape {list(x.shape)}")
    as_matrix(x, "input")


# The primitive ops' checks of shapes, dtypes and scalars (run in the fakes too), so that a direct
# torch.ops.qubd call can never hand a kernel something it would misread.


def _value_bounds(ws: list[torch.Tensor]) -> None:
    if not ws:
        raise ValueError("ws must hold at least one tensor")
    for i, w in enumerate(ws):
        check_float_values(w, f"weights[{i}]")
    check_one_device(ws)


def _order_statistics(w: torch.Tensor, ranks: list[int]) -> None:
    check_float_values(w)
    bad = [r for r in ranks if not 0 <= r < w.numel()]
    if bad:
        raise ValueError(f"ranks must lie in [0, {w.numel() - 1}], got {bad}")


def _order_statistics_batched(ws: list[torch.Tensor], ranks: list[list[int]]) -> None:
    if not ws:
        raise ValueError("ws must hold at least one tensor")
    if len(ranks) != len(ws):
        raise ValueError(f"ranks must hold one list per tensor; got {len(ranks)} for {len(ws)} tensors")
    for i, (w, wanted) in enumerate(zip(ws, ranks, strict=True)):
        check_float_values(w, f"weights[{i}]")
        if wanted and not (min(wanted) >= 0 and max(wanted) < w.numel()):
            bad = [r for r in wanted if not 0 <= r < w.numel()]
            raise ValueError(f"weights[{i}]: ranks must lie in [0, {w.numel() - 1}], got {bad}")
    check_one_device(ws)


# The widest digit radix_digit_counts counts (2**16 counts per prefix).
MAX_DIGIT_BITS = 16


def _radix_digit_counts(w: torch.Tensor, prefixes: list[int], fixed_bits: int, digit_bits: int) -> None:
    if not isinstance(w, torch.Tensor):  # empty is fine: a shard may hold no values
        raise TypeError(f"weights must be a torch.Tensor, got {type(w).__name__}")
    if w.dtype not in FLOAT_DTYPES:
        raise ValueError(f"weights must be float32, float16, bfloat16 or float64, got {w.dtype}")
    key_bits = torch.finfo(w.dtype).bits
    if not 1 <= digit_bits <= MAX_DIGIT_BITS or not 0 <= fixed_bits <= key_bits - digit_bits:
        raise ValueError(
            f"a digit of {digit_bits} bits (1..{MAX_DIGIT_BITS}) after {fixed_bits} fixed bits does not fit "
            f"the {key_bits}-bit keys of {w.dtype}"
        )
    bad = [p for p in prefixes if not 0 <= p < 1 << fixed_bits]
    if bad:
        raise ValueError(f"prefixes must lie in [0, 2**{fixed_bits}), got {bad}")


def _quantize_to_grid(w: torch.Tensor, lo: float, delta: float, bits: int) -> None:
    check_float_values(w)
    check_bits(bits)
    check_grid(lo, delta)


def _weight_histograms(w: torch.Tensor, lo: float, delta: float, bits: int) -> None:
    _quantize_to_grid(w, lo, delta, bits)
    check_matrix(w, "weights")


def _weight_histograms_batched(
    ws: list[torch.Tensor], lo: list[float], delta: list[float], bits: int
) -> None:
    if not len(ws) == len(lo) == len(delta):
        raise ValueError(
            f"ws, lo and delta must have one entry per tensor; got {len(ws)}, {len(lo)}, {len(delta)}"
        )
    if not ws:
        raise ValueError("ws must hold at least one tensor")
    check_bits(bits)
    for i, (w, a, d) in enumerate(zip(ws, lo, delta, strict=True)):
        check_float_values(w, f"weights[{i}]")
        check_matrix(w, f"weights[{i}]")
        check_grid(a, d, what=f"weights[{i}]: ")
    check_one_device(ws)


def _plane_histograms(q: torch.Tensor, bits: int) -> None:
    check_tensor(q, "codes")
    check_bits(bits)
    if q.dtype not in CODE_DTYPES:
        names = ", ".join(str(d).removeprefix("torch.") for d in CODE_DTYPES)
        raise ValueError(f"codes must be an integer tensor ({names}), got {q.dtype}")
    if q.dtype == torch.bool and bits != 1:
        raise ValueError(f"boolean codes have 1 bit-plane, got bits={bits}")
    check_matrix(q, "codes")


def _ctm_score(histograms: torch.Tensor) -> None:
    check_matrix(histograms, "histograms")
    if histograms.shape[1] != BLOCK_CODES or histograms.dtype != torch.int64:
        got = f"{histograms.dtype} {list(histograms.shape)}"
        raise ValueError(f"histograms must be int64 [planes, {BLOCK_CODES}], got {got}")


SHAPE_CHECKS = {
    "value_bounds": _value_bounds,
    "order_statistics": _order_statistics,
    "order_statistics_batched": _order_statistics_batched,
    "radix_digit_counts": _radix_digit_counts,
    "quantize_to_grid": _quantize_to_grid,
    "weight_histograms": _weight_histograms,
    "weight_histograms_batched": _weight_histograms_batched,
    "plane_histograms": _plane_histograms,
    "ctm_score": _ctm_score,
    "weight_scores": _weight_histograms,
    "weight_scores_batched": _weight_histograms_batched,
    "weight_scores_and_ones_batched": _weight_histograms_batched,
}


def _codes_in_range(q: torch.Tensor, bits: int) -> None:
    _plane_histograms(q, bits)
    if q.dtype == torch.bool:
        return
    lo, hi = (int(v) for v in torch.aminmax(q))
    if lo < 0 or hi >= 2**bits:
        raise ValueError(f"codes must lie in [0, {2**bits - 1}] for bits={bits}; found [{lo}, {hi}]")


def _counts_not_negative(histograms: torch.Tensor) -> None:
    _ctm_score(histograms)
    if histograms.numel() and int(histograms.min()) < 0:
        raise ValueError("histograms must hold counts >= 0, found a negative count")


# The primitive ops' full checks, run before their kernels on real tensors.
PRIMITIVE_CHECKS = {**SHAPE_CHECKS, "plane_histograms": _codes_in_range, "ctm_score": _counts_not_negative}
