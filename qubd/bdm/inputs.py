"""Input checks for the BDM API: data become a uint8 tensor of symbols, or a clear ValueError.

Accepted: numpy arrays (or anything ``np.asarray`` turns into an integer array) and torch tensors
(any device), of integer or bool dtype, with every value in ``0..nsymbols-1``. Where pybdm raises
``TypeError`` for a non-integer array, qubd raises ``ValueError`` (as for every bad input).
"""

from __future__ import annotations

import numpy as np
import torch


def as_symbols(x: object, ndim: int, nsymbols: int, what: str = "X") -> torch.Tensor:
    """``x`` as a uint8 tensor (on its own device for tensors, CPU otherwise), checked."""
    if isinstance(x, torch.Tensor):
        t = x
        if t.dtype.is_floating_point or t.dtype.is_complex:
            raise ValueError(f"{what} must hold integer symbols 0..{nsymbols - 1}, got dtype {t.dtype}")
        _check_shape(tuple(t.shape), ndim, what)
        if t.dtype == torch.bool:
            return t.to(torch.uint8)
        lo, hi = torch.aminmax(t if t.dtype in _MINMAX_DTYPES else t.to(torch.int64))
        lo, hi = int(lo), int(hi)
    else:
        a = np.asarray(x)
        if a.dtype == np.bool_:
            _check_shape(a.shape, ndim, what)
            return torch.from_numpy(a.astype(np.uint8))
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{what} must hold integer symbols 0..{nsymbols - 1}, got dtype {a.dtype}")
        _check_shape(a.shape, ndim, what)
        lo, hi = int(a.min()), int(a.max())
        t = a
    if lo < 0 or hi >= nsymbols:
        raise ValueError(
            f"{what} must hold symbols 0..{nsymbols - 1} (nsymbols={nsymbols}); found values in [{lo}, {hi}]"
        )
    if isinstance(t, np.ndarray):
        return torch.from_numpy(t.astype(np.uint8))
    return t.to(torch.uint8)


_MINMAX_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _check_shape(shape: tuple[int, ...], ndim: int, what: str) -> None:
    if len(shape) != ndim:
        raise ValueError(f"{what} must be {ndim}D for this BDM (ndim={ndim}), got shape {list(shape)}")
    if 0 in shape:
        raise ValueError(f"{what} is empty (shape {list(shape)})")


def check_int_option(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
