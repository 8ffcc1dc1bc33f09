"""Count stage: distinct raw blocks and their numbers of occurrences.

A block is counted by its *raw* code (:func:`qubd.bdm.blocks.encode_blocks`): a block and a
relabelling of it are distinct blocks with counts of their own, as in pybdm. Small code spaces are
counted with ``bincount``, larger ones by sorting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from qubd.bdm.blocks import BlockGroup, encode_blocks

# Code spaces up to this size are counted with bincount, larger ones by sorting.
_BINCOUNT_LIMIT = 1 << 20


@dataclass
class BlockCounts:
    """Per block shape, the distinct raw block codes (ascending) and their counts.

    ``digits`` (shapes counted by sorting, when the blocks were at hand): the symbols of one block
    per distinct code, which the lookup may use instead of decoding the codes. ``histogram``: set
    when the blocks were counted as 2D binary 4x4 blocks by ``qubd.ops.plane_histograms``, the full
    [1, 65536] histogram of their codes.
    """

    codes: dict[tuple[int, ...], torch.Tensor] = field(default_factory=dict)
    counts: dict[tuple[int, ...], torch.Tensor] = field(default_factory=dict)
    digits: dict[tuple[int, ...], torch.Tensor] = field(default_factory=dict)
    histogram: torch.Tensor | None = None

    @property
    def total(self) -> int:
        """Number of blocks counted."""
        return int(sum(int(c.sum()) for c in self.counts.values()))

    def add_histogram(self, shape: tuple[int, ...], hist: torch.Tensor) -> None:
        """Record the blocks of ``shape`` given as a histogram over their codes."""
        self.codes[shape] = hist.nonzero().flatten()
        self.counts[shape] = hist[self.codes[shape]]

    def add_codes(
        self, shape: tuple[int, ...], raw: torch.Tensor, nsymbols: int, blocks: torch.Tensor | None = None
    ) -> None:
        """Count the blocks of ``shape`` with raw codes ``raw`` (and symbols ``blocks`` [P, L], if given)."""
        space = nsymbols ** math.prod(shape)
        if space <= _BINCOUNT_LIMIT:
            self.add_histogram(shape, torch.bincount(raw, minlength=space))
            return
        ordered, order = torch.sort(raw)
        starts = torch.ones_like(ordered, dtype=torch.bool)
        starts[1:] = ordered[1:] != ordered[:-1]
        first = starts.nonzero().flatten()
        self.codes[shape] = ordered[first]
        self.counts[shape] = torch.diff(first, append=first.new_tensor([ordered.numel()]))
        if blocks is not None:
            self.digits[shape] = blocks[order[first]]


def count_blocks(groups: list[BlockGroup], nsymbols: int, into: BlockCounts | None = None) -> BlockCounts:
    """Count the blocks of ``groups`` (``into``: add them to these counts)."""
    counted = BlockCounts() if into is None else into
    for group in groups:
        counted.add_codes(group.shape, encode_blocks(group.blocks, nsymbols), nsymbols, group.blocks)
    return counted
