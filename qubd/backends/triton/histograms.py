"""Per-plane histograms of 4x4 block codes: one fused pass over the weights (or integer codes).

Two thin kernels share one tile routine, ``_count_tiles``: ``_histograms_kernel`` runs over one
matrix (float weights, quantised in registers, or integer codes), ``_batched_histograms_kernel``
over many weight matrices, each program on one of them (found through a table of data pointers and
a per-tensor record of ``SEGMENT_FIELDS``). Each program of a persistent launch loops over tiles of
``TILE_ROWS x TILE_COLS`` whole 4x4 blocks, reading every element once in its stored dtype; a thread
holds whole blocks, so a block's 16-bit code for every bit-plane is formed in registers (bit tricks
in ``_slab_bytes``).
Counting, privatised so that the codes dominating a plane do not serialise on one address:

* the two codes that dominate near-constant planes, 0x0000 and 0xFFFF, in per-thread registers,
  reduced per program and added (int64) to a small [BITS, 2] array once at the end;
* every other code by an atomic add into one of ``copies`` private int32 histogram copies (program
  ``i`` uses copy ``i % copies``), summed at the end, so programs do not all contend on one copy.
  A copy's cell counts at most the blocks of its programs: int32 holds them below 2**35 elements.

Offsets are int64 throughout (tensors past 2**31 elements).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from qubd.backends.triton._launch import check_device, grid_scalars, num_programs, on_input_device
from qubd.backends.triton.quantize import quantize_codes
from qubd.ctm.tables import BLOCK_CODES
from qubd.range import compute_dtype

# Blocks per tile (a tile is TILE_BLOCKS * 16 elements); block columns per tile follow the matrix width.
TILE_BLOCKS = 256
MAX_TILE_BLOCK_COLS = 64
# Private histogram copies: one per this many tiles, at most MAX_COPIES.
TILES_PER_COPY = 64
MAX_COPIES = 8
NUM_WARPS = 8
# Batched launches use one tile shape for all tensors (a constexpr of the kernel).
BATCH_TILE_COLS = 16
# Larger tensors get a launch of their own: their pass over the weights dwarfs its fixed costs.
BATCH_MAX_ELEMENTS = 2**24
ALL_ONES = BLOCK_CODES - 1
CODES = tl.constexpr(BLOCK_CODES)
# The hot codes, counted apart: 0x0000 and 0xFFFF, in this order in the [..., BITS, 2] hot counts.
HOT_CODES = tl.constexpr(2)

# A batched launch's record of each tensor: int64 [tensors, len(SEGMENT_FIELDS)], fields in this order.
SEGMENT_FIELDS = ("n_cols", "n_block_rows", "n_block_cols", "n_tile_cols", "n_tiles", "programs")
SEGMENT_SIZE = tl.constexpr(len(SEGMENT_FIELDS))
N_COLS, N_BLOCK_ROWS, N_BLOCK_COLS, N_TILE_COLS, N_TILES, PROGRAMS = (
    tl.constexpr(i) for i in range(len(SEGMENT_FIELDS))
)
# The Triton type of each weight dtype (a batched launch reaches its tensors by address).
ELEMENT_TYPES = {
    torch.float32: tl.float32,
    torch.float16: tl.float16,
    torch.bfloat16: tl.bfloat16,
    torch.float64: tl.float64,
}


@triton.jit
def _row_codes(src_ptr, offs, mask, lo, delta, BITS: tl.constexpr, FROM_WEIGHTS: tl.constexpr):
    """uint32 codes of one row of cells of each block, read once in the stored dtype."""
    x = tl.load(src_ptr + offs, mask=mask, other=0)
    if FROM_WEIGHTS:
        q = quantize_codes(x, lo, delta, 2**BITS - 1, src_ptr.dtype.element_ty == tl.float64)
    else:
        q = x.to(tl.int32)
    return q.to(tl.uint32)


@triton.jit
def _cell_bytes(q, group, byte_shift):
    """Bits group .. group + 7 of the 4 cells of a block row, one byte per cell (cell c in byte c)."""
    return tl.sum(((q >> group) & 0xFF) << byte_shift, axis=2)


@triton.jit
def _slab_bytes(top, bottom, planes):
    """For each plane p (leading axis of ``planes``), the 2x4 slab of a block formed by two rows:
    8 bits, the top row's 4 cells in the high nibble and the bottom row's in the low one, first
    cell as the high bit. ``top``/``bottom``: byte-per-cell words of the planes' 8-plane group.

    Within a 4-plane group the two rows' nibbles are interleaved into one word; masking bit p % 4
    of every nibble leaves bits 0, 8, 16, 24 (bottom row) and 4, 12, 20, 28 (top row), and the
    multiply gathers them into the top byte in cell order (every partial product lands on a
    distinct bit, so nothing carries).
    """
    low_half = ((top & 0x0F0F0F0F) << 4) | (bottom & 0x0F0F0F0F)
    high_half = (top & 0xF0F0F0F0) | ((bottom >> 4) & 0x0F0F0F0F)
    slab = tl.where((planes % 8) < 4, low_half, high_half)
    return (((slab >> (planes % 4)) & 0x11111111) * 0x08040201) >> 24


@triton.jit
def _count_tiles(
    src_ptr,
    lo,
    delta,
    hist_ptr,  # int32 [BITS, CODES], zeroed: this program's counts of every code but the hot ones
    hot_ptr,  # int64 [BITS, HOT_CODES], zeroed: counts of 0x0000 and 0xFFFF
    n_cols,
    n_block_rows,
    n_block_cols,
    n_tile_cols,
    n_tiles,
    first_tile,
    stride,
    BITS: tl.constexpr,
    FROM_WEIGHTS: tl.constexpr,  # True: float weights to quantise; False: integer codes
    TILE_ROWS: tl.constexpr,  # block rows per tile
    TILE_COLS: tl.constexpr,  # block columns per tile
    PLANES: tl.constexpr,  # BITS rounded up to a power of two
):
    """Count the block codes of tiles ``first_tile, first_tile + stride, ...`` of one matrix."""
    # Every thread holds whole blocks: a block row's 4 cells are contiguous (one vector load) and
    # the 4 rows are 4 loads with the same layout, so forming a block's code never crosses threads.
    cell = tl.arange(0, 4)[None, None, :]
    byte_shift = 8 * cell
    planes = tl.arange(0, PLANES)[:, None, None]
    zeros_seen = tl.zeros([PLANES, TILE_ROWS, TILE_COLS], dtype=tl.int32)
    ones_seen = tl.zeros([PLANES, TILE_ROWS, TILE_COLS], dtype=tl.int32)

    for tile in range(first_tile, n_tiles, stride):
        block_row = tl.cast(tile // n_tile_cols, tl.int64) * TILE_ROWS + tl.arange(0, TILE_ROWS)
        block_col = tl.cast(tile % n_tile_cols, tl.int64) * TILE_COLS + tl.arange(0, TILE_COLS)
        block_ok = (block_row < n_block_rows)[:, None] & (block_col < n_block_cols)[None, :]
        # Only cells of full blocks are read: leftover rows/columns never are.
        mask = block_ok[:, :, None] & (cell < 4)
        offs = (block_row * 4)[:, None, None] * n_cols + (block_col * 4)[None, :, None] + cell
        q0 = _row_codes(src_ptr, offs, mask, lo, delta, BITS, FROM_WEIGHTS)
        q1 = _row_codes(src_ptr, offs + n_cols, mask, lo, delta, BITS, FROM_WEIGHTS)
        q2 = _row_codes(src_ptr, offs + 2 * n_cols, mask, lo, delta, BITS, FROM_WEIGHTS)
        q3 = _row_codes(src_ptr, offs + 3 * n_cols, mask, lo, delta, BITS, FROM_WEIGHTS)
        code = tl.zeros([PLANES, TILE_ROWS, TILE_COLS], dtype=tl.uint32)
        for group in tl.static_range(0, BITS, 8):  # planes 0-7, then 8-15
            row0 = _cell_bytes(q0, group, byte_shift)
            row1 = _cell_bytes(q1, group, byte_shift)
            row2 = _cell_bytes(q2, group, byte_shift)
            row3 = _cell_bytes(q3, group, byte_shift)
            # Cell (r, c) of a block is bit 15 - (4r + c) of its code: rows 0-1 are the high byte.
            group_code = (_slab_bytes(row0, row1, planes) << 8) | _slab_bytes(row2, row3, planes)
            code = tl.where((planes >= group) & (planes < group + 8), group_code, code)

        counted = block_ok[None, :, :] & (planes < BITS)
        is_zero = counted & (code == 0)
        is_ones = counted & (code == CODES - 1)
        zeros_seen += is_zero.to(tl.int32)
        ones_seen += is_ones.to(tl.int32)
        cold = counted & ~is_zero & ~is_ones
        tl.atomic_add(hist_ptr + planes * CODES + code.to(tl.int32), 1, mask=cold, sem="relaxed")

    plane_ids = tl.arange(0, PLANES)
    in_range = plane_ids < BITS
    zeros_total = tl.sum(tl.sum(zeros_seen, axis=2), axis=1).to(tl.int64)
    ones_total = tl.sum(tl.sum(ones_seen, axis=2), axis=1).to(tl.int64)
    tl.atomic_add(hot_ptr + plane_ids * HOT_CODES, zeros_total, mask=in_range, sem="relaxed")
    tl.atomic_add(hot_ptr + plane_ids * HOT_CODES + 1, ones_total, mask=in_range, sem="relaxed")


@triton.jit
def _histograms_kernel(
    src_ptr,
    lo_ptr,  # [1] grid origin, compute dtype; None for integer codes
    delta_ptr,  # [1] grid step, compute dtype; None for integer codes
    hist_ptr,  # int32 [copies, BITS, CODES], zeroed
    hot_ptr,  # int64 [BITS, HOT_CODES], zeroed
    n_cols,
    n_block_rows,
    n_block_cols,
    n_tile_cols,
    n_tiles,
    copies,  # private histogram copies: program i counts into copy i % copies
    BITS: tl.constexpr,
    FROM_WEIGHTS: tl.constexpr,
    TILE_ROWS: tl.constexpr,
    TILE_COLS: tl.constexpr,
    PLANES: tl.constexpr,
):
    pid = tl.program_id(0)
    lo = 0.0
    delta = 1.0
    if FROM_WEIGHTS:
        lo = tl.load(lo_ptr)
        delta = tl.load(delta_ptr)
    copy_ptr = hist_ptr + (pid % copies).to(tl.int64) * BITS * CODES
    _count_tiles(
        src_ptr, lo, delta, copy_ptr, hot_ptr, n_cols, n_block_rows, n_block_cols, n_tile_cols, n_tiles,
        pid, tl.num_programs(0), BITS, FROM_WEIGHTS, TILE_ROWS, TILE_COLS, PLANES,
    )  # fmt: skip


@triton.jit
def _batched_histograms_kernel(
    src_table_ptr,  # int64 [tensors]: the data pointer of each weight matrix
    lo_ptr,  # [tensors] grid origins, compute dtype
    delta_ptr,  # [tensors] grid steps, compute dtype
    hist_ptr,  # int32 [tensors, BITS, CODES], zeroed
    hot_ptr,  # int64 [tensors, BITS, HOT_CODES], zeroed
    segments_ptr,  # int64 [tensors, SEGMENT_SIZE]: each tensor's record (SEGMENT_FIELDS)
    programs_ptr,  # int32 [programs, 2]: the tensor of each program and its rank among the tensor's
    ELEMENT: tl.constexpr,  # the weights' Triton dtype (one per launch)
    BITS: tl.constexpr,
    TILE_ROWS: tl.constexpr,
    TILE_COLS: tl.constexpr,
    PLANES: tl.constexpr,
):
    pid = tl.program_id(0)
    tensor = tl.load(programs_ptr + 2 * pid).to(tl.int64)
    rank = tl.load(programs_ptr + 2 * pid + 1)
    segment = segments_ptr + tensor * SEGMENT_SIZE
    src_ptr = tl.load(src_table_ptr + tensor).to(tl.pointer_type(ELEMENT))
    _count_tiles(
        src_ptr, tl.load(lo_ptr + tensor), tl.load(delta_ptr + tensor),
        hist_ptr + tensor * BITS * CODES, hot_ptr + tensor * BITS * HOT_CODES,
        tl.load(segment + N_COLS), tl.load(segment + N_BLOCK_ROWS), tl.load(segment + N_BLOCK_COLS),
        tl.load(segment + N_TILE_COLS), tl.load(segment + N_TILES),
        rank, tl.load(segment + PROGRAMS).to(tl.int32), BITS, True, TILE_ROWS, TILE_COLS, PLANES,
    )  # fmt: skip


@dataclass(frozen=True)
class _Tiling:
    """How a 2D matrix is cut into tiles of whole 4x4 blocks."""

    n_cols: int
    n_block_rows: int
    n_block_cols: int
    tile_rows: int
    tile_cols: int
    n_tile_cols: int
    n_tiles: int

    @staticmethod
    def of(shape: tuple[int, int], tile_cols: int | None = None) -> _Tiling:
        n_block_rows, n_block_cols = shape[0] // 4, shape[1] // 4
        if tile_cols is None:
            tile_cols = min(MAX_TILE_BLOCK_COLS, TILE_BLOCKS, triton.next_power_of_2(max(1, n_block_cols)))
        tile_rows = TILE_BLOCKS // tile_cols
        n_tile_cols = triton.cdiv(n_block_cols, tile_cols)
        n_tiles = triton.cdiv(n_block_rows, tile_rows) * n_tile_cols
        return _Tiling(shape[1], n_block_rows, n_block_cols, tile_rows, tile_cols, n_tile_cols, n_tiles)


def _matrix(x: torch.Tensor) -> torch.Tensor:
    check_device(x)
    x = x.contiguous()
    return x.view(torch.uint8) if x.dtype == torch.bool else x


def _counts(hist: torch.Tensor, hot: torch.Tensor) -> torch.Tensor:
    """int64 [..., BITS, 65536] from the int32 counts of cold codes and the int64 hot counts."""
    counts = hist.to(torch.int64)
    counts[..., 0] = hot[..., 0]
    counts[..., ALL_ONES] = hot[..., 1]
    return counts


def _histograms(
    src: torch.Tensor, bits: int, from_weights: bool, lo: float = 0.0, delta: float = 1.0
) -> torch.Tensor:
    src = _matrix(src)
    t = _Tiling.of(tuple(src.shape))
    if t.n_tiles == 0:
        return torch.zeros(bits, BLOCK_CODES, dtype=torch.int64, device=src.device)
    programs = num_programs(src.device, t.n_tiles)
    copies = max(1, min(MAX_COPIES, programs, t.n_tiles // TILES_PER_COPY))
    hist = torch.zeros(copies, bits, BLOCK_CODES, dtype=torch.int32, device=src.device)
    hot = torch.zeros(bits, HOT_CODES.value, dtype=torch.int64, device=src.device)
    lo_t, delta_t = grid_scalars(src, lo, delta) if from_weights else (None, None)
    _histograms_kernel[(programs,)](
        src,
        lo_t,
        delta_t,
        hist,
        hot,
        t.n_cols,
        t.n_block_rows,
        t.n_block_cols,
        t.n_tile_cols,
        t.n_tiles,
        copies,
        BITS=bits,
        FROM_WEIGHTS=from_weights,
        TILE_ROWS=t.tile_rows,
        TILE_COLS=t.tile_cols,
        PLANES=triton.next_power_of_2(bits),
        num_warps=NUM_WARPS,
        enable_fp_fusion=False,  # the quantiser's float math must round as written
    )
    return _counts(hist.sum(dim=0) if copies > 1 else hist[0], hot)


@on_input_device
def weight_histograms(w: torch.Tensor, lo: float, delta: float, bits: int) -> torch.Tensor:
    """int64 [bits, 65536]: block-code histograms of the bit-planes of the quantised 2D weights ``w``."""
    return _histograms(w, bits, from_weights=True, lo=lo, delta=delta)


@on_input_device
def plane_histograms(q: torch.Tensor, bits: int) -> torch.Tensor:
    """int64 [bits, 65536]: block-code histograms of the bit-planes of 2D integer/bool codes ``q``."""
    return _histograms(q, bits, from_weights=False)


@on_input_device
def weight_histograms_batched(
    ws: Sequence[torch.Tensor], lo: Sequence[float], delta: Sequence[float], bits: int
) -> torch.Tensor:
    """int64 [len(ws), bits, 65536]: ``weight_histograms`` of many 2D weight matrices.

    The small ones (at most ``BATCH_MAX_ELEMENTS``) share one launch per dtype, so that hundreds of
    small tensors do not each pay a launch and its setup; a lone or large tensor gets the
    single-tensor launch (private histogram copies, a tile shape fitted to its width). The op checked
    the inputs first (one entry per tensor, a non-empty list on one device: ops/validation.py).
    """
    mats = [_matrix(w) for w in ws]
    out = torch.empty(len(mats), bits, BLOCK_CODES, dtype=torch.int64, device=mats[0].device)
    batched = []
    for i, m in enumerate(mats):
        if len(mats) == 1 or m.numel() > BATCH_MAX_ELEMENTS:
            out[i] = _histograms(m, bits, from_weights=True, lo=lo[i], delta=delta[i])
        else:
            batched.append(i)
    for dtype in {mats[i].dtype for i in batched}:
        index = [i for i in batched if mats[i].dtype == dtype]
        out[index] = _batched_histograms(
            [mats[i] for i in index], [lo[i] for i in index], [delta[i] for i in index], bits
        )
    return out


def _batched_histograms(
    mats: list[torch.Tensor], lo: list[float], delta: list[float], bits: int
) -> torch.Tensor:
    """One launch over matrices of one dtype. Each tensor gets programs in proportion to its tiles
    (at least one), and every program works on one tensor only, so its hot-code counters are
    flushed once, as in the single-tensor kernel."""
    device = mats[0].device
    tilings = [_Tiling.of(tuple(m.shape), tile_cols=BATCH_TILE_COLS) for m in mats]
    total = sum(t.n_tiles for t in tilings)
    hist = torch.zeros(len(mats), bits, BLOCK_CODES, dtype=torch.int32, device=device)
    hot = torch.zeros(len(mats), bits, HOT_CODES.value, dtype=torch.int64, device=device)
    if total == 0:
        return _counts(hist, hot)
    cap = num_programs(device, total)
    shares = [
        0 if t.n_tiles == 0 else min(t.n_tiles, max(1, round(cap * t.n_tiles / total))) for t in tilings
    ]
    segments = [
        [t.n_cols, t.n_block_rows, t.n_block_cols, t.n_tile_cols, t.n_tiles, share]
        for t, share in zip(tilings, shares, strict=True)
    ]
    owners = [(i, rank) for i, share in enumerate(shares) for rank in range(share)]
    compute = compute_dtype(mats[0].dtype)
    _batched_histograms_kernel[(len(owners),)](
        torch.tensor([m.data_ptr() for m in mats], dtype=torch.int64, device=device),
        torch.tensor(lo, dtype=compute, device=device),
        torch.tensor(delta, dtype=compute, device=device),
        hist,
        hot,
        torch.tensor(segments, dtype=torch.int64, device=device),
        torch.tensor(owners, dtype=torch.int32, device=device),
        ELEMENT=ELEMENT_TYPES[mats[0].dtype],
        BITS=bits,
        TILE_ROWS=TILE_BLOCKS // BATCH_TILE_COLS,
        TILE_COLS=BATCH_TILE_COLS,
        PLANES=triton.next_power_of_2(bits),
        num_warps=NUM_WARPS,
        enable_fp_fusion=False,
    )
    return _counts(hist, hot)
