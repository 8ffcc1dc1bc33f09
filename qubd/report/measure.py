"""Every measure of a tensor, as named vectors: the same function scores weight tensors and their
baseline tensors, so both are measured alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from qubd import ops
from qubd.report.baselines import ExpectedBaseline, expected_baseline
from qubd.report.compression import compressed_plane_sizes
from qubd.report.manifold import manifold_bdm
from qubd.report.options import EXPECTED, ScoreOptions
from qubd.report.plane_counts import scores_and_ones

BDM = "bdm"
BINARY = "binary"
MANIFOLD = "manifold"


def single_value_measures(options: ScoreOptions) -> tuple[str, ...]:
    """The measures with one value per tensor ("binary", "manifold") that ``options`` asks for."""
    return tuple(name for name, wanted in ((BINARY, options.binary), (MANIFOLD, options.manifold)) if wanted)


def measure_names(options: ScoreOptions) -> tuple[str, ...]:
    """The measures ``measure`` returns: "bdm" (per plane), then "binary", compressors and "manifold"
    if asked."""
    return (
        (BDM,)
        + ((BINARY,) if options.binary else ())
        + options.compressors
        + ((MANIFOLD,) * options.manifold)
    )


@dataclass
class Measurement:
    """A tensor's measures (``values["bdm"]`` per plane, ...) and, for the "expected" baseline, the
    closed-form baseline of each measure that has one ("bdm", "binary"; not the compressors)."""

    values: dict[str, list[float]]
    expected: dict[str, ExpectedBaseline] = field(default_factory=dict)


def measure_many(ws: list[torch.Tensor], options: ScoreOptions) -> list[Measurement]:
    """For each tensor (all on one device), ``{"bdm": per-plane QuBD, "binary": [BDM(W > 0)],
    "gzip": per-plane bytes, ...}`` (and the expected baselines); the QuBD of all of them comes from
    one batched op."""
    with_expected = options.baseline == EXPECTED
    if with_expected:
        scores, ones = scores_and_ones(ws, options.bits, options.clip)
        rows, plane_ones = scores.tolist(), ones.tolist()
    else:
        rows = ops.qubd_batched(ws, options.bits, options.clip).tolist()
        plane_ones = [None] * len(ws)
    results = []
    for w, row, counts in zip(ws, rows, plane_ones, strict=True):
        result = Measurement({BDM: row})
        if with_expected:
            result.expected[BDM] = expected_baseline(w.shape, counts)
        if options.binary:
            positive = w.flatten(1) > 0
            result.values[BINARY] = [ops.bdm(positive).item()]
            if with_expected:
                result.expected[BINARY] = expected_baseline(w.shape, [int(positive.sum())])
        for compressor in options.compressors:
            result.values[compressor] = compressed_plane_sizes(w, options.bits, options.clip, compressor)
        if options.manifold:
            result.values[MANIFOLD] = [manifold_bdm(w, options.bits, options.clip)]
        results.append(result)
    return results
