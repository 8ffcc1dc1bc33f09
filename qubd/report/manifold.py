"""The tiled manifold: a tensor's bit-planes interleaved into one binary image, scored with BDM, so
that blocks see neighbouring bits of one weight together (the QuBD authors' ``get_tiled_manifold``,
saintslab/QuBD ``qbdm/qbdm.py``).

For ``bits`` planes of an ``R x C`` matrix the image is ``(R*tr) x (C*tc)`` with the tile grid
``(tr, tc)`` = (2, 1), (2, 2), (4, 2) for 2, 4, 8 bits and ``(bits, 1)`` otherwise; weight
``(r, c)`` is the ``tr x tc`` tile at ``(r*tr, c*tc)``, its bit ``i*tc + j`` (0 the least
significant) at offset ``(i, j)`` (their ``tiled[i::tr, j::tc] = planes[i*tc + j]``).
"""

from __future__ import annotations

import torch

from qubd import ops

TILE_GRIDS = {2: (2, 1), 4: (2, 2), 8: (4, 2)}


def tile_grid(bits: int) -> tuple[int, int]:
    return TILE_GRIDS.get(bits, (bits, 1))


def tiled_manifold(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """The uint8 0/1 image of the ``bits``-bit integer ``codes`` (a 2-D matrix)."""
    tr, tc = tile_grid(bits)
    rows, cols = codes.shape
    bit = torch.arange(bits, device=codes.device, dtype=codes.dtype).view(tr, tc)
    # [rows, tr, cols, tc]: cell (r, i, c, j) is bit i*tc + j of codes[r, c].
    planes = (codes.view(rows, 1, cols, 1) >> bit.view(1, tr, 1, tc)) & 1
    return planes.to(torch.uint8).reshape(rows * tr, cols * tc)


def manifold_bdm(w: torch.Tensor, bits: int, clip: float | None) -> float:
    """BDM of the tiled manifold of ``w``'s codes (``w`` scored as its ``flatten(1)`` matrix)."""
    codes = ops.quantize(w, bits, clip).flatten(1)
    return float(ops.bdm(tiled_manifold(codes, bits)))
