"""Input checks shared by every backend: bad input is a ValueError naming the problem."""

from __future__ import annotations

import torch

from qubd.ctm.tables import BLOCK_CODES

MAX_BITS = 16
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


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
    """DESIGN.md step 1: flatten(1) to 2D; refuse what has no full 4x4 block."""
    if x.ndim < 2:
        raise ValueError(f"{what} must have at least 2 dimensions, got shape {list(x.shape)}")
    m = x.flatten(1)
    if m.shape[0] < 4 or m.shape[1] < 4:
        raise ValueError(
            f"{what} of shape {list(x.shape)} (as a {m.shape[0]}x{m.shape[1]} matrix) "
            "has a side < 4, so it holds no 4x4 block"
        )
    return m


def check_codes(q: torch.Tensor, bits: int) -> None:
    check_tensor(q, "codes")
    check_bits(bits)
    if q.dtype == torch.bool:
        if bits != 1:
            raise ValueError(f"boolean codes have 1 bit-plane, got bits={bits}")
        return
    if q.dtype.is_floating_point or q.dtype.is_complex:
        raise ValueError(f"codes must be an integer or bool tensor, got {q.dtype}")
    lo, hi = (int(v) for v in torch.aminmax(q))
    if lo < 0 or hi >= 2**bits:
        raise ValueError(f"codes must lie in [0, {2**bits - 1}] for bits={bits}; found [{lo}, {hi}]")


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


def check_float_values(w: torch.Tensor, what: str = "weights") -> None:
    check_tensor(w, what)
    if w.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{what} must be float32, float16, bfloat16 or float64, got {w.dtype}")


def check_one_device(ws: list[torch.Tensor]) -> None:
    devices = {w.device for w in ws}
    if len(devices) > 1:
        raise ValueError(f"all tensors of a batch must be on one device, got {sorted(map(str, devices))}")


# The primitive ops' own checks, run before any backend's kernel (qubd/ops/library.py), so that a
# direct torch.ops.qubd call can never hand a kernel something it would misread.


def _order_statistics(w: torch.Tensor, ranks: list[int]) -> None:
    check_float_values(w)
    bad = [r for r in ranks if not 0 <= r < w.numel()]
    if bad:
        raise ValueError(f"ranks must lie in [0, {w.numel() - 1}], got {bad}")


def _quantize_to_grid(w: torch.Tensor, lo: float, delta: float, bits: int) -> None:
    check_float_values(w)
    check_bits(bits)


def _weight_histograms(w: torch.Tensor, lo: float, delta: float, bits: int) -> None:
    check_float_values(w)
    check_matrix(w, "weights")
    check_bits(bits)


def _weight_histograms_batched(
    ws: list[torch.Tensor], lo: list[float], delta: list[float], bits: int
) -> None:
    if not len(ws) == len(lo) == len(delta):
        raise ValueError(
            f"ws, lo and delta must have one entry per tensor; got {len(ws)}, {len(lo)}, {len(delta)}"
        )
    check_bits(bits)
    for i, w in enumerate(ws):
        check_float_values(w, f"weights[{i}]")
        check_matrix(w, f"weights[{i}]")
    check_one_device(ws)


def _plane_histograms(q: torch.Tensor, bits: int) -> None:
    check_codes(q, bits)
    check_matrix(q, "codes")


def _ctm_score(histograms: torch.Tensor) -> None:
    check_matrix(histograms, "histograms")
    if histograms.shape[1] != BLOCK_CODES or histograms.dtype != torch.int64:
        got = f"{histograms.dtype} {list(histograms.shape)}"
        raise ValueError(f"histograms must be int64 [planes, {BLOCK_CODES}], got {got}")


PRIMITIVE_CHECKS = {
    "order_statistics": _order_statistics,
    "quantize_to_grid": _quantize_to_grid,
    "weight_histograms": _weight_histograms,
    "weight_histograms_batched": _weight_histograms_batched,
    "plane_histograms": _plane_histograms,
    "ctm_score": _ctm_score,
}
