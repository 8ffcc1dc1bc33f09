"""Every measure of a tensor, as named vectors: the same function scores weight tensors and their
baseline tensors, so both are measured alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from qubd import ops
from qubd.report.baselines import ExpectedBaseline, expected_baselines
from qubd.report.compression import compressed_plane_sizes
from qubd.report.manifold import manifold_bdm
from qubd.report.options import EXPECTED, ScoreOptions
from qubd.report.plane_counts import scores_and_ones

BDM = "bdm"
BINARY = "binary"
MANIFOLD = "manifold"


def measure_names(options: ScoreOptions) -> tuple[str, ...]:
    """The measures ``measure`` returns: "bdm" (per plane), then "binary", compressors and "manifold"
    if asked."""
    binary = (BINARY,) if options.binary else ()
    manifold = (MANIFOLD,) if options.manifold else ()
    return (BDM, *binary, *options.compressors, *manifold)


def single_value_measures(options: ScoreOptions) -> tuple[str, ...]:
    """The measures with one value per tensor ("binary", "manifold") that ``options`` asks for."""
    return tuple(name for name in measure_names(options) if name in (BINARY, MANIFOLD))


@dataclass
class Measurement:
    """A tensor's measures (``values["bdm"]`` per plane, ...) and, for the "expected" baseline, the
    closed-form baseline of each measure that has one ("bdm", "binary"; not the compressors)."""

    values: dict[str, list[float]]
    expected: dict[str, ExpectedBaseline] = field(default_factory=dict)


def measure_many(ws: list[torch.Tensor], options: ScoreOptions) -> list[Measurement]:
    """For each tensor (all on one device), ``{"bdm": per-plane QuBD, "binary": [BDM(W > 0)],
    "gzip": per-plane bytes, ...}`` (and the expected baselines); the QuBD of all of them comes from
    one batched op, and the expected baselines of all of them from one closed-form computation."""
    with_expected = options.baseline == EXPECTED
    if with_expected:
        scores, ones = scores_and_ones(ws, options.bits, options.clip)
        rows = scores.tolist()
    else:
        rows = ops.qubd_batched(ws, options.bits, options.clip).tolist()
    results = [Measurement({BDM: row}) for row in rows]
    shapes = [w.shape for w in ws]
    if with_expected:
        for result, expected in zip(results, expected_baselines(shapes, ones.tolist()), strict=True):
            result.expected[BDM] = expected
    if options.binary:
        positives = [w.flatten(1) > 0 for w in ws]
        for result, positive in zip(results, positives, strict=True):
            result.values[BINARY] = [ops.bdm(positive).item()]
        if with_expected:
            counts = [[int(positive.sum())] for positive in positives]
            for result, expected in zip(results, expected_baselines(shapes, counts), strict=True):
                result.expected[BINARY] = expected
    for w, result in zip(ws, results, strict=True):
        for compressor in options.compressors:
            result.values[compressor] = compressed_plane_sizes(w, options.bits, options.clip, compressor)
        if options.manifold:
            result.values[MANIFOLD] = [manifold_bdm(w, options.bits, options.clip)]
    return results
