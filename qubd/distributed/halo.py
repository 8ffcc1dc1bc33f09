"""The 4x4 blocks of a matrix split along rows (or columns) over ranks, each counted once.

Blocks are cut at global rows 4r..4r+3 (columns likewise). A block belongs to the rank that holds its
first row; the rows it lacks (at most 3, from the next ranks: shards need not be multiples of 4, and
may be short or empty) are sent to it by the ranks that hold them. Each rank then has whole blocks
only, starting at a global multiple of 4, and its block histograms add up to the whole matrix's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

BLOCK = 4


def _round_up(x: int) -> int:
    return -(-x // BLOCK) * BLOCK


@dataclass(frozen=True)
class ShardLayout:
    """Where each group rank's slice lies along the split dimension ``dim`` (0 rows, 1 columns) of a
    matrix ``length`` long along it: group rank ``r`` holds ``[starts[r], starts[r] + sizes[r])``."""

    dim: int
    length: int
    starts: tuple[int, ...]
    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        end = 0
        for start, size in sorted(zip(self.starts, self.sizes, strict=True)):
            if size and start != end:
                raise ValueError(
                    f"shards at {self.starts} of sizes {self.sizes} do not tile 0..{self.length}"
                )
            end += size
        if end != self.length:
            raise ValueError(f"shards of sizes {self.sizes} do not add up to {self.length}")

    def held(self, rank: int) -> tuple[int, int]:
        return self.starts[rank], self.starts[rank] + self.sizes[rank]

    def owned(self, rank: int) -> tuple[int, int]:
        """The rows ``[a, b)`` of the blocks this rank counts (empty when a >= b)."""
        start, end = self.held(rank)
        used = self.length // BLOCK * BLOCK
        return _round_up(start), min(used, _round_up(end))

    def needed(self, rank: int) -> tuple[int, int]:
        """The rows this rank must get from others: ``[a, b)`` past its own slice (at most 3)."""
        own_start, own_end = self.owned(rank)
        return max(self.held(rank)[1], own_start), own_end


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return max(a[0], b[0]), min(a[1], b[1])


def owned_blocks(
    local: torch.Tensor, layout: ShardLayout, group: dist.ProcessGroup | None = None
) -> torch.Tensor:
    """This rank's slice ``local`` (a 2D matrix, split along ``layout.dim``) cut to the rows of the
    blocks it owns, completed with the rows it lacks from the other ranks. Every rank must call it."""
    rank = dist.get_rank(group)
    start, _ = layout.held(rank)
    ops, received = [], []
    for peer in range(len(layout.sizes)):
        if peer == rank:
            continue
        # what this rank sends to peer: its rows that peer needs
        a, b = _overlap(layout.held(rank), layout.needed(peer))
        if a < b:
            piece = local.narrow(layout.dim, a - start, b - a).contiguous()
            ops.append(dist.P2POp(dist.isend, piece, group=group, group_peer=peer))
        # what it receives from peer: peer's rows that this rank needs
        a, b = _overlap(layout.held(peer), layout.needed(rank))
        if a < b:
            shape = list(local.shape)
            shape[layout.dim] = b - a
            piece = torch.empty(shape, dtype=local.dtype, device=local.device)
            ops.append(dist.P2POp(dist.irecv, piece, group=group, group_peer=peer))
            received.append((a, piece))
    if ops:
        for work in dist.batch_isend_irecv(ops):
            work.wait()
    own_start, own_end = layout.owned(rank)
    if own_start >= own_end:
        shape = list(local.shape)
        shape[layout.dim] = 0
        return local.new_empty(shape)
    mine_end = min(own_end, layout.held(rank)[1])
    parts = [local.narrow(layout.dim, own_start - start, max(0, mine_end - own_start))]
    parts += [piece for _, piece in sorted(received, key=lambda item: item[0])]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=layout.dim)
