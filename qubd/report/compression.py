"""The paper's lossless-compression baselines: gzip / lzma sizes of the packed bit-planes."""

from __future__ import annotations

import gzip
import lzma

import numpy as np
import torch

from qubd import ops

COMPRESS = {
    "gzip": lambda data: gzip.compress(data, compresslevel=9, mtime=0),
    "lzma": lambda data: lzma.compress(data, preset=6),
}


def compressed_plane_sizes(w: torch.Tensor, bits: int, clip: float | None, compressor: str) -> list[float]:
    """Bytes of each bit-plane (plane 0 the least significant) of ``w``'s codes, packed 8 cells a byte
    row-major over the whole ``flatten(1)`` matrix, after compression."""
    codes = ops.quantize(w, bits, clip).flatten(1).cpu().numpy()
    compress = COMPRESS[compressor]
    return [float(len(compress(np.packbits((codes >> p) & 1).tobytes()))) for p in range(bits)]
