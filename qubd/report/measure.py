"""Every measure of one tensor, as named vectors: the same function scores a weight tensor and each of
its baseline tensors, so both are measured alike."""

from __future__ import annotations

import torch

from qubd import ops
from qubd.report.compression import compressed_plane_sizes
from qubd.report.options import ScoreOptions

BDM = "bdm"
BINARY = "binary"


def measure_names(options: ScoreOptions) -> tuple[str, ...]:
    """The measures ``measure`` returns: "bdm" (per plane), then "binary" and compressors if asked."""
    return (BDM,) + ((BINARY,) if options.binary else ()) + options.compressors


def measure(w: torch.Tensor, options: ScoreOptions) -> dict[str, list[float]]:
    """``{"bdm": per-plane QuBD, "binary": [BDM(W > 0)], "gzip": per-plane bytes, ...}``."""
    values = {BDM: ops.qubd(w, options.bits, options.clip).tolist()}
    if options.binary:
        values[BINARY] = [ops.bdm(w.flatten(1) > 0).item()]
    for compressor in options.compressors:
        values[compressor] = compressed_plane_sizes(w, options.bits, options.clip, compressor)
    return values
