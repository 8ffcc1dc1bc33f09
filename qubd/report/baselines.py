"""Baselines: what a tensor's complexity is compared with (paper Eq. 14).

``expected``: the mean and standard deviation of each plane's QuBD over all random arrangements of
the tensor's values, in closed form from the ones per plane (``qubd.report.expected``); no tensor
is built and no random number drawn.
``shuffle``: the tensor's own values in a random order (same value distribution, no structure).
``reinit``: a random re-initialisation of the module that owns the tensor (its ``reset_parameters``).
``reference``: the tensor of the same name in a reference checkpoint (``qubd.report.reference``).
Each run of each tensor has its own seed, derived from ``--seed``, the tensor's name and the run, so
a tensor's baseline does not depend on which other tensors are scored.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from qubd.checkpoints import TensorEntry
from qubd.report.errors import ReportError
from qubd.report.expected import BLOCK_SIDE, bdm_std, expected_bdm
from qubd.report.options import REFERENCE, REINIT, SHUFFLE, ScoreOptions
from qubd.report.reference import reference_tensor

INT32_INDEX_LIMIT = 2**31


@dataclass(frozen=True, slots=True)
class ExpectedBaseline:
    """A measure's closed-form baseline: per plane (or one value), the mean and standard deviation
    over random arrangements of the tensor's values."""

    mean: list[float]
    std: list[float]


# The closed forms of the planes seen so far, (cells, blocks, ones) -> (mean, std): many small
# tensors share a shape and their planes' ones counts (a 4x4 plane has 17 possible), so most are
# looked up. A plane's numbers do not depend on the planes computed with it (``qubd.report.expected``),
# so a lookup gives what a computation would. Emptied when full, so that a long training run's
# tracker does not grow it without bound.
_planes_seen: dict[tuple[int, int, int], tuple[float, float]] = {}
PLANES_KEPT = 2**16


def expected_baseline(shape: Sequence[int], ones: Sequence[int]) -> ExpectedBaseline:
    """The expected baseline of planes with ``ones[i]`` ones in a tensor of ``shape`` (viewed as its
    ``flatten(1)`` matrix, as it is scored)."""
    return expected_baselines([shape], [ones])[0]


def expected_baselines(
    shapes: Sequence[Sequence[int]], ones: Sequence[Sequence[int]]
) -> list[ExpectedBaseline]:
    """``expected_baseline`` of each tensor, the planes not seen before computed in one go. Each
    distinct (cells, blocks, ones) of the call is looked up (or computed) once: many small tensors
    share a handful of them."""
    if len(shapes) != len(ones):
        raise ValueError(f"{len(shapes)} shapes but {len(ones)} lists of ones")
    planes = [len(counts) for counts in ones]
    counts = np.fromiter(itertools.chain.from_iterable(ones), dtype=np.int64, count=sum(planes))
    # Planes by matrix (cells, blocks), then by their ones: one np.unique over each matrix's counts.
    matrix_ids: dict[tuple[int, int], int] = {}
    tensor_matrix = [matrix_ids.setdefault(_matrix(shape), len(matrix_ids)) for shape in shapes]
    plane_matrix = np.repeat(np.asarray(tensor_matrix, dtype=np.int64), planes)
    groups = []  # (the planes of one matrix, its distinct keys, each plane's index into them)
    for (cells, blocks), matrix in matrix_ids.items():
        mine = np.flatnonzero(plane_matrix == matrix)
        distinct, where = np.unique(counts[mine], return_inverse=True)
        groups.append((mine, [(cells, blocks, k) for k in distinct.tolist()], where.reshape(-1)))
    table = _closed_forms([key for _, keys, _ in groups for key in keys])
    means, stds = np.empty(len(counts)), np.empty(len(counts))
    for mine, keys, where in groups:
        mean_of, std_of = np.array([table[key] for key in keys], dtype=np.float64).reshape(-1, 2).T
        means[mine], stds[mine] = mean_of[where], std_of[where]
    mean_list, std_list = means.tolist(), stds.tolist()
    starts = list(itertools.accumulate(planes, initial=0))
    return [
        ExpectedBaseline(mean_list[start:stop], std_list[start:stop])
        for start, stop in zip(starts[:-1], starts[1:], strict=True)
    ]


def _matrix(shape: Sequence[int]) -> tuple[int, int]:
    """(cells, complete 4x4 blocks) of the ``flatten(1)`` matrix of a tensor of ``shape``."""
    rows, cols = shape[0], math.prod(shape[1:])
    return rows * cols, (rows // BLOCK_SIDE) * (cols // BLOCK_SIDE)


def _closed_forms(keys: list[tuple[int, int, int]]) -> dict[tuple[int, int, int], tuple[float, float]]:
    """(mean, std) of each (cells, blocks, ones): looked up in the shared cache, the rest computed
    together. The answer is a table of its own: the shared cache may be emptied (or, from another
    thread, changed) between the lookup and the answer."""
    table = {key: _planes_seen.get(key) for key in keys}
    missing = [key for key, known in table.items() if known is None]
    if missing:
        cells, blocks, counts = np.array(missing, dtype=np.int64).T
        means, stds = expected_bdm(cells, blocks, counts).tolist(), bdm_std(cells, blocks, counts).tolist()
        computed = dict(zip(missing, zip(means, stds, strict=True), strict=True))
        table.update(computed)
        if len(_planes_seen) + len(computed) > PLANES_KEPT:
            _planes_seen.clear()
        _planes_seen.update(computed)
    return table


def run_seed(seed: int, name: str, run: int) -> int:
    """A 63-bit seed for baseline run ``run`` of tensor ``name``."""
    digest = hashlib.blake2b(f"{seed}\0{name}\0{run}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def shuffled(w: torch.Tensor, seed: int) -> torch.Tensor:
    """``w``'s values randomly permuted, same shape. The permutation is a seeded ``torch.randperm`` on
    the CPU whatever ``w``'s device, so the baseline (and every ratio) is the same on CPU and GPU for
    one seed; on a GPU its indices are then copied over.

    Cost: the permutation is generated on the CPU (about 10 ns per element, ~0.2 s for 2**24 weights)
    and copied to the device (4 bytes per element below 2**31 elements, 8 above): slower than a
    ``randperm`` on the GPU, which would give other numbers. Memory: the permutation (int32 below
    2**31 elements) on the CPU and on ``w``'s device, and the permuted copy."""
    n = w.numel()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    index_dtype = torch.int32 if n < INT32_INDEX_LIMIT else torch.int64
    order = torch.randperm(n, generator=generator, device="cpu", dtype=index_dtype).to(w.device)
    # index_select takes int32 indices as they are (w[order] would widen them to int64: 2x the memory)
    return torch.index_select(w.reshape(-1), 0, order).reshape(w.shape)


def baseline_tensors(entry: TensorEntry, w: torch.Tensor, options: ScoreOptions) -> Iterator[torch.Tensor]:
    """One baseline tensor per run (none for baseline "none"), each on ``w``'s device."""
    for run in range(options.runs):
        seed = run_seed(options.seed, entry.name, run)
        if options.baseline == SHUFFLE:
            yield shuffled(w, seed)
        elif options.baseline == REINIT:
            if entry.reinitialize is None:
                raise ReportError(f"baseline 'reinit' needs the module that owns '{entry.name}'")
            yield entry.reinitialize(seed).to(w.device)
        elif options.baseline == REFERENCE:
            yield reference_tensor(entry, w.device)
