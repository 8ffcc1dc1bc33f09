"""One weight tensor sharded over ranks (a DTensor), scored bit for bit as one process scores the
whole tensor: global range, blocks cut at global rows/columns (halo rows from the neighbour), block
histograms summed on one rank, which computes the CTM sum.

Why the histograms are summed on one rank rather than reduce-scattered with the CTM sum split over
codes: floating-point addition is not associative, and the sum of 65,536 terms in one process's order
is what makes the result equal to a single-process score bit for bit. The rank that gets the summed
histograms (``owner``) also computes the "expected" baseline: the ones per plane over the whole
matrix are the blocks' ones (from the summed histograms) plus the ones in the cells no block covers,
which each rank counts in its own slice (``plane_counts``) and which are summed on the owner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Replicate, Shard

from qubd.checkpoints import as_scorable, nonfinite_count
from qubd.ctm.tables import BLOCK_CODES
from qubd.distributed.collectives import all_or_none, comm_device
from qubd.distributed.halo import BLOCK, ShardLayout, owned_blocks
from qubd.distributed.order_statistics import INT32_MAX, global_range
from qubd.range import QuantGrid, quant_grid
from qubd.reference.plane_ones import block_ones, edge_ones
from qubd.report.baselines import expected_baseline
from qubd.report.errors import ReportError
from qubd.report.measure import BDM
from qubd.report.options import EXPECTED, ScoreOptions
from qubd.report.range_notes import FLOAT64_GRID, TINY_SPAN
from qubd.report.scores import TensorScore


@dataclass(frozen=True)
class ShardedWeight:
    """This rank's slice of a weight matrix (``weight.flatten(1)``) split along ``layout.dim`` over
    the ranks of ``group``."""

    name: str
    shape: tuple[int, ...]
    local: torch.Tensor
    layout: ShardLayout
    group: dist.ProcessGroup

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def is_sharded(t: torch.Tensor) -> bool:
    """A DTensor with a shard on some rank (Replicate-only DTensors are whole on every rank)."""
    return isinstance(t, DTensor) and not all(isinstance(p, Replicate) for p in t.placements)


def sharded_weight(name: str, t: DTensor) -> ShardedWeight:
    """The local view of a DTensor sharded on dim 0 (FSDP2) or dim 1 (tensor parallel) of a 1-D
    mesh. Collective: every rank of the mesh calls it for the same tensor, in the same order."""
    mesh = t.device_mesh
    if mesh.ndim != 1 or not isinstance(t.placements[0], Shard) or t.placements[0].dim not in (0, 1):
        raise ReportError(
            f"tensor '{name}': placements {t.placements} on a {mesh.ndim}-D mesh are not supported "
            "(qubd scores DTensors sharded on dim 0 or 1 of a 1-D mesh: FSDP2, tensor parallel)"
        )
    dim = t.placements[0].dim
    group = mesh.get_group()
    local = t.to_local().detach().flatten(1)
    mine = torch.tensor(
        [mesh.get_local_rank(), local.shape[dim]], dtype=torch.int64, device=comm_device(group)
    )
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size(group))]
    dist.all_gather(everyone, mine, group=group)
    coordinates = [int(e[0]) for e in everyone]
    sizes = [int(e[1]) for e in everyone]
    starts = [
        sum(sizes[g] for g in range(len(sizes)) if coordinates[g] < coordinates[r]) for r in range(len(sizes))
    ]
    full = (t.shape[0], math.prod(t.shape[1:]))
    return ShardedWeight(
        name, tuple(t.shape), local, ShardLayout(dim, full[dim], tuple(starts), tuple(sizes)), group
    )


def score_sharded(
    weight: ShardedWeight, score: TensorScore, options: ScoreOptions, owner: int
) -> TensorScore | None:
    """On group rank ``owner``, ``score`` (the tensor's empty record) filled as one process fills it:
    per-plane QuBD of the whole tensor, its closed-form baseline under "expected" and range note, or
    why it is skipped; None on the other ranks. A float32 tensor whose range float32 cannot span is
    quantised in float64, as one process does (``qubd.report.range_notes``)."""
    group = weight.group
    device = options.torch_device()
    local = bad = None
    with all_or_none(group):
        local = as_scorable(weight.local).to(device)
        bad = nonfinite_count(local)
    total_bad = torch.tensor([bad], dtype=torch.int64, device=comm_device(group))
    dist.all_reduce(total_bad, group=group)
    if total_bad.item():
        score.skipped = _nonfinite(weight, int(total_bad.item()), options)
        return score if dist.get_rank(group) == owner else None
    lo, hi = global_range(local, weight.numel, options.clip, group)
    # A span float32 cannot hold (weights near +-3.4e38): quantised in float64, as one process does.
    widened = lo.dtype != torch.float64 and not bool(torch.isfinite(hi - lo))
    if widened:
        local = local.to(torch.float64)
        lo, hi = global_range(local, weight.numel, options.clip, group)
    try:
        grid = quant_grid(lo, hi, options.bits)
    except ValueError as err:  # the same range on every rank: every rank raises it
        raise ReportError(f"tensor '{weight.name}': {err}") from None
    blocks = owned_blocks(local, weight.layout, group)
    histograms = None
    with all_or_none(group):
        if blocks.shape[0] >= BLOCK and blocks.shape[1] >= BLOCK:
            histograms = torch.ops.qubd.weight_histograms(
                blocks.contiguous(), grid.lo, grid.delta, options.bits
            )
        else:
            histograms = torch.zeros(options.bits, BLOCK_CODES, dtype=torch.int64, device=device)
    counts_fit_int32 = weight.numel // (BLOCK * BLOCK) <= INT32_MAX
    sent = histograms.to(comm_device(group), torch.int32 if counts_fit_int32 else torch.int64)
    dist.reduce(sent, group_dst=owner, group=group)
    ones = _edge_ones(weight, local, grid, options.bits, owner) if options.baseline == EXPECTED else None
    if dist.get_rank(group) != owner:
        return None
    summed = sent.to(device, torch.int64)
    score.values[BDM] = torch.ops.qubd.ctm_score(summed).tolist()
    if ones is not None:
        ones += block_ones(summed).to(ones.device)
        score.expected[BDM] = expected_baseline(weight.shape, ones.tolist())
    score.note = FLOAT64_GRID if widened else TINY_SPAN if math.isinf(grid.delta) else None
    return score


def _edge_ones(
    weight: ShardedWeight, local: torch.Tensor, grid: QuantGrid, bits: int, owner: int
) -> torch.Tensor:
    """int64 [bits]: on group rank ``owner``, the ones per plane in the whole matrix's cells that no
    complete block covers (each rank counts those of its own slice); meaningless on the others."""
    layout = weight.layout
    start, end = layout.held(dist.get_rank(weight.group))
    covered = [local.shape[0] - local.shape[0] % BLOCK, local.shape[1] - local.shape[1] % BLOCK]
    covered[layout.dim] = min(max(0, layout.length // BLOCK * BLOCK - start), end - start)
    ones = edge_ones(local, *covered, grid.lo, grid.delta, bits, torch.ops.qubd.quantize_to_grid)
    ones = ones.to(comm_device(weight.group))
    dist.reduce(ones, group_dst=owner, group=weight.group)
    return ones


def _nonfinite(weight: ShardedWeight, bad: int, options: ScoreOptions) -> str:
    """The skip reason of a tensor with ``bad`` NaN/Inf values, or a ReportError if not skipped."""
    if options.nonfinite != "skip":
        raise ReportError(
            f"tensor '{weight.name}' has {bad} NaN/Inf value(s) of {weight.numel}; "
            "skip such tensors with --nonfinite skip (nonfinite='skip')"
        )
    return f"non-finite values ({bad} NaN/Inf)"
