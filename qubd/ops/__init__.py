"""The public ops. Each is a ``torch.ops.qubd`` op (schema in ``qubd.ops.library``), callable on
CPU or CUDA tensors; torch's dispatcher runs the kernels of the tensor's device
(``qubd.ops.dispatch``; ``QUBD_BACKEND`` forces one backend).

The ops' ``clip`` defaults to None (min/max); ``qubd.score`` and the CLI default to 99.9."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from qubd.ops import dispatch, validation

dispatch.use_environment()


def _as_tensor(x: object) -> object:
    """A numpy array as a CPU tensor (its dtype kept; copied when read-only, as torch cannot share
    it); anything else unchanged, for the op's own checks to name it."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x if x.flags.writeable else x.copy())
    return x


def quantize(w: torch.Tensor, bits: int, clip: float | None = None) -> torch.Tensor:
    """Integer codes of ``w`` on its ``bits``-bit grid (docs/design.md 1.2 steps 2-3), shape of ``w``.

    uint8 for bits <= 8, int32 above. ``clip`` is a percentile (e.g. 99.9) for a robust range,
    None for min/max.

    **Default range differs by entry point**: the ops default to ``clip=None`` (min/max, the
    contract's plain definition); ``qubd.score``, ``ComplexityTracker`` and the CLI default to
    ``clip=99.9`` (the paper's code). Pass ``clip`` explicitly to get the same numbers everywhere.
    A numpy array is taken as a CPU tensor.
    """
    # Checked here, not only in the op: its schema would turn bits=True into 1.
    return _quantize(_as_tensor(w), bits, clip)


_quantize = validation.checked(validation.check_quantize, torch.ops.qubd.quantize)


def plane_histograms(q: torch.Tensor, bits: int) -> torch.Tensor:
    """int64 [bits, 65536]: counts of 4x4 block codes in each bit-plane of integer codes ``q``.

    ``q`` is flattened to 2D (``flatten(1)``); plane 0 is the least significant bit.
    """
    matrix = validation.as_matrix(validation.check_tensor(_as_tensor(q), "codes"), "codes")
    return torch.ops.qubd.plane_histograms(matrix.contiguous(), bits)


def bdm(x: torch.Tensor) -> torch.Tensor:
    """BDM of a 2D binary tensor (bool or 0/1 integers), as ``pybdm.BDM(ndim=2).bdm``; float64."""
    return torch.ops.qubd.bdm(validation.check_tensor(_as_tensor(x), "x"))


def qubd(w: torch.Tensor, bits: int = 8, clip: float | None = None) -> torch.Tensor:
    """QuBD per bit-plane of a weight tensor: float64 [bits], plane 0 the least significant.

    The complexity of ``w`` is the sum. ``clip``: percentile for a robust range, None for min/max.

    **Default range differs by entry point**: the ops default to ``clip=None`` (min/max, the
    contract's plain definition); ``qubd.score``, ``ComplexityTracker`` and the CLI default to
    ``clip=99.9`` (the paper's code). Pass ``clip`` explicitly to get the same numbers everywhere.
    A numpy array is taken as a CPU tensor.
    """
    return _qubd(_as_tensor(w), bits, clip)


_qubd = validation.checked(validation.check_qubd, torch.ops.qubd.qubd)


def qubd_batched(ws: Iterable[torch.Tensor], bits: int = 8, clip: float | None = None) -> torch.Tensor:
    """``qubd`` of each tensor of ``ws`` (all on one device): float64 [len(ws), bits].

    The same numbers as one ``qubd`` call per tensor. On a GPU the histograms of many tensors are
    computed in one kernel launch, and without ``clip`` their ranges cost one device sync in all, so
    hundreds of small tensors do not each pay launch and sync overhead.

    **Default range differs by entry point**: the ops default to ``clip=None`` (min/max, the
    contract's plain definition); ``qubd.score``, ``ComplexityTracker`` and the CLI default to
    ``clip=99.9`` (the paper's code). Pass ``clip`` explicitly to get the same numbers everywhere.
    A numpy array is taken as a CPU tensor.
    """
    if isinstance(ws, (torch.Tensor, np.ndarray)):
        raise TypeError(
            "ws must be a sequence of torch.Tensor or numpy arrays (use qubd for a single tensor)"
        )
    ws = [_as_tensor(w) for w in ws]
    if not all(isinstance(w, torch.Tensor) for w in ws):
        raise TypeError(
            "ws must be a sequence of torch.Tensor or numpy arrays (use qubd for a single tensor)"
        )
    if not ws:
        validation.check_bits(bits)
        validation.check_clip(clip)
        return torch.empty(0, bits, dtype=torch.float64)
    return _qubd_batched(ws, bits, clip)


_qubd_batched = validation.checked(validation.check_qubd_batched, torch.ops.qubd.qubd_batched)


__all__ = ["bdm", "plane_histograms", "quantize", "qubd", "qubd_batched"]
