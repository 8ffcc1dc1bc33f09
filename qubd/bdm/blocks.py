"""Blocks: groups of blocks of one shape, a block as a base-k integer, and pybdm's symbol normalisation.

A block of ``L`` cells (1D: in order; 2D: row-major) over the alphabet ``0..k-1`` is the integer
``sum_i block[i] * k**(L-1-i)``: the first cell is the most significant digit, so the code written
in base k is pybdm's key string (``string_from_array``). pybdm counts blocks by this *raw* key and
looks their CTM value up under the *normalised* key, where symbols are relabelled 0, 1, 2, ... in
order of first appearance (``normalize_key``). Both are computed here on integer tensors of any
device, without Python loops over blocks.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import torch

# Normalising is done in chunks of this many codes to bound the [codes, L, k] temporaries.
_CHUNK = 1 << 18
# Two-level normalisation tables up to this many suffix entries (4-symbol blocks of 12: 65 states
# x 4**6 = 266,240 entries, 2 MiB).
_TWO_LEVEL_LIMIT = 1 << 19


@dataclass(frozen=True)
class BlockGroup:
    """All blocks of one shape: ``blocks`` [P, L] symbols (2D blocks row-major), ``index`` [P, L] the
    flat position in the data of every cell (when asked for)."""

    shape: tuple[int, ...]
    blocks: torch.Tensor
    index: torch.Tensor | None = None


def place_values(length: int, nsymbols: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """int64 [length]: ``nsymbols ** (length - 1 - i)``, the weight of cell ``i`` in a block code."""
    return nsymbols ** torch.arange(length - 1, -1, -1, dtype=torch.int64, device=device)


def encode_blocks(blocks: torch.Tensor, nsymbols: int) -> torch.Tensor:
    """int64 [P]: codes of ``blocks`` [P, L] (symbols ``0..nsymbols-1``, one block per row).

    A float64 matrix-vector product: every code is below 2**53 (9**12 < 2**39), so it is exact.
    """
    weights = place_values(blocks.shape[-1], nsymbols, blocks.device).to(torch.float64)
    return (blocks.to(torch.float64) @ weights).to(torch.int64)


def decode_codes(codes: torch.Tensor, length: int, nsymbols: int) -> torch.Tensor:
    """int64 [U, length]: the symbols of each block code (inverse of :func:`encode_blocks`)."""
    weights = place_values(length, nsymbols, codes.device)
    return torch.div(codes.unsqueeze(-1), weights, rounding_mode="floor") % nsymbols


def key_string(code: int, length: int, nsymbols: int) -> str:
    """pybdm's key string of one block code (for messages)."""
    digits = decode_codes(torch.tensor([code]), length, nsymbols)[0]
    return "".join(str(int(d)) for d in digits)


def normalize_digits(digits: torch.Tensor, nsymbols: int) -> torch.Tensor:
    """int64 [U]: normalised codes of blocks given by their symbols ``digits`` [U, L].

    With F[i] = first position of the symbol at position i, the new label at i is the number of
    first occurrences before F[i]: one scatter (first positions), two gathers and a cumsum,
    whatever the alphabet size.
    """
    if digits.shape[0] > _CHUNK:
        return torch.cat([normalize_digits(chunk, nsymbols) for chunk in digits.split(_CHUNK)])
    rows, length = digits.shape
    d = digits.to(torch.int64)
    pos = torch.arange(length, device=digits.device).expand(rows, length)
    first = torch.full((rows, nsymbols), length, dtype=torch.int64, device=digits.device)
    first.scatter_reduce_(1, d, pos, reduce="amin")
    first_of_cell = first.gather(1, d)
    labels_at = (first_of_cell == pos).cumsum(dim=1) - 1
    return encode_blocks(labels_at.gather(1, first_of_cell), nsymbols)


def normalize_codes(codes: torch.Tensor, length: int, nsymbols: int) -> torch.Tensor:
    """int64 [U]: codes of the blocks with symbols relabelled in order of first appearance.

    Equals pybdm's ``normalize_key`` on the key strings. For a binary alphabet this is "complement
    the block if its first cell is 1"; blocks of even length whose two-level tables are small (e.g.
    4-symbol blocks of 12) go through them (:func:`_two_level_tables`); others through
    :func:`normalize_digits`.
    """
    if nsymbols == 2:
        top = (codes >> (length - 1)) & 1
        return torch.where(top.bool(), codes ^ ((1 << length) - 1), codes)
    if _two_level_size(length, nsymbols) <= _TWO_LEVEL_LIMIT:
        half = nsymbols ** (length // 2)
        prefix_code, prefix_state, suffix = _two_level_tables(nsymbols, length // 2, str(codes.device))
        prefix, rest = torch.div(codes, half, rounding_mode="floor"), codes % half
        return prefix_code[prefix] * half + suffix[prefix_state[prefix] * half + rest]
    return normalize_digits(decode_codes(codes, length, nsymbols), nsymbols)


def normalises_by_table(length: int, nsymbols: int) -> bool:
    """Whether :func:`normalize_codes` normalises codes of blocks of ``length`` by table lookups (binary
    blocks, and those with small two-level tables), which is faster than :func:`normalize_digits` on
    the blocks' symbols."""
    return nsymbols == 2 or _two_level_size(length, nsymbols) <= _TWO_LEVEL_LIMIT


def _two_level_size(length: int, nsymbols: int) -> float:
    """Entries of the suffix table of :func:`_two_level_tables` (inf for odd lengths): one row of
    ``k**(length/2)`` per state, a state being the symbols seen, in order of first appearance."""
    if length % 2:
        return math.inf
    half = length // 2
    states = sum(math.perm(nsymbols, d) for d in range(min(nsymbols, half) + 1))
    return states * nsymbols**half


@functools.cache
def _two_level_tables(
    nsymbols: int, half: int, device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tables that normalise a block of 2 * ``half`` symbols from its two halves.

    The labels of the second half depend on the first half only through its *state*: the symbols
    seen, in order of first appearance. ``prefix_code[p]``: the normalised first half;
    ``prefix_state[p]``: the id of its state; ``suffix[state * k**half + s]``: the normalised second
    half ``s`` after a first half in that state (from one representative first half per state).
    """
    k = nsymbols
    prefixes = decode_codes(torch.arange(k**half), half, k)
    prefix_code = normalize_digits(prefixes, k)
    # State key: the symbols in order of first appearance, as base-(k+1) digits (symbol + 1).
    order = torch.full((prefixes.shape[0], k), -1, dtype=torch.int64)
    first = torch.full((prefixes.shape[0], k), half, dtype=torch.int64).scatter_reduce_(
        1, prefixes, torch.arange(half).expand_as(prefixes), reduce="amin"
    )
    ranked = first.argsort(dim=1, stable=True)  # symbols by first position; absent ones last
    present = first.gather(1, ranked) < half
    order = torch.where(present, ranked + 1, 0)
    state_key = (order * (k + 1) ** torch.arange(k - 1, -1, -1)).sum(dim=1)
    keys, prefix_state = torch.unique(state_key, return_inverse=True)
    representative = torch.zeros(keys.numel(), dtype=torch.int64).scatter_(
        0, prefix_state, torch.arange(prefix_state.numel())
    )
    suffixes = decode_codes(torch.arange(k**half), half, k)
    blocks = torch.cat(
        [
            prefixes[representative].repeat_interleave(k**half, dim=0),
            suffixes.repeat(keys.numel(), 1),
        ],
        dim=1,
    )
    suffix = normalize_digits(blocks, k) % (k**half)
    return prefix_code.to(device), prefix_state.to(device), suffix.to(device)


def sliding_codes(x: torch.Tensor, side: int, shift: int, nsymbols: int) -> torch.Tensor:
    """int64 codes of every window of ``side`` (1D) or ``side x side`` (2D) at steps of ``shift``.

    Horner's rule over shifted strided views of ``x`` (no [windows, L] copy): the codes of
    pybdm's correlated partition, in row-major window order.
    """
    dtype = torch.int32 if nsymbols ** (side**x.ndim) < 2**31 else torch.int64
    counts = [(n - side) // shift + 1 for n in x.shape]
    code = torch.zeros(counts, dtype=dtype, device=x.device)
    for offsets in itertools.product(range(side), repeat=x.ndim):
        view = x[
            tuple(slice(o, o + (c - 1) * shift + 1, shift) for o, c in zip(offsets, counts, strict=True))
        ]
        code = code * nsymbols + view
    return code.reshape(-1).to(torch.int64)


def distinct_symbols(normalised_codes: torch.Tensor, length: int, nsymbols: int) -> torch.Tensor:
    """int64 [U]: number of distinct symbols of each *normalised* code (its largest digit + 1)."""
    return decode_codes(normalised_codes, length, nsymbols).amax(dim=1) + 1
