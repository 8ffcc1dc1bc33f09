"""Every measure of a tensor, as named vectors: the same function scores weight tensors and their
baseline tensors, so both are measured alike."""

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


def measure_many(ws: list[torch.Tensor], options: ScoreOptions) -> list[dict[str, list[float]]]:
    """For each tensor (all on one device), ``{"bdm": per-plane QuBD, "binary": [BDM(W > 0)],
    "gzip": per-plane bytes, ...}``; the QuBD of all of them comes from one batched op."""
    rows = ops.qubd_batched(ws, options.bits, options.clip).tolist()
    results = []
    for w, row in zip(ws, rows, strict=True):
        values = {BDM: row}
        if options.binary:
            values[BINARY] = [ops.bdm(w.flatten(1) > 0).item()]
        for compressor in options.compressors:
            values[compressor] = compressed_plane_sizes(w, options.bits, options.clip, compressor)
        results.append(values)
    return results
