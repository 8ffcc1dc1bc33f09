"""Bounds for normalised BDM and block entropy, exactly as pybdm defines them.

pybdm normalises ``(value - min) / (max - min)`` with bounds that depend only on the *shapes* of
the parts (``partition._iter_shapes``, see :meth:`qubd.bdm.partitions.Partition.part_shapes`), not on the
data:

* min BDM: for each part shape with ``n`` parts, the smallest CTM value of the shape + log2(n);
* max BDM: pybdm lists the shape's table entries by decreasing CTM, each repeated
  ``k! / (k - d)!`` times (d = distinct symbols of the normalised key: the number of raw blocks
  that share it), and hands the ``n`` parts out along that list, cycling when ``n`` exceeds it;
  max = sum over list positions used of CTM + log2(times used). Computed here in closed form;
* min entropy: ``log2(S)`` for ``S`` distinct part shapes (pybdm counts each shape once, not its
  parts);
* max entropy: the entropy of the counts of list *positions* used, where each shape contributes
  each of its first ``min(n, list length)`` positions once and positions of different shapes with
  the same index are merged (pybdm keys them by index alone).

These reproduce pybdm's numbers (including the last two, which look unintended) to rounding.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import cache

import numpy as np
import torch

from qubd.bdm.blocks import distinct_symbols
from qubd.ctm.tables import load_table


@cache
def _ranked(table_name: str, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table entries of ``shape`` by decreasing CTM: values, repetitions, cumulative repetitions."""
    table = load_table(table_name)
    k = table.nsymbols
    order = np.argsort(-table.values[shape], kind="stable")
    values = table.values[shape][order]
    distinct = distinct_symbols(torch.from_numpy(table.codes[shape][order]), math.prod(shape), k).numpy()
    perms = np.array([math.perm(k, d) if d <= k else 0 for d in range(k + 2)], dtype=np.int64)
    reps = perms[distinct]
    return values, reps, np.cumsum(reps)


def _check(table_name: str, shapes: Counter) -> None:
    table = load_table(table_name)
    for shape in shapes:
        if shape not in table.codes:
            raise ValueError(
                f"normalisation needs CTM values for parts of shape {shape}, which {table_name} lacks "
                "(pybdm raises KeyError here: the recursive partition normalises over the slices cut short "
                "by the edges, and 2D tables have only square shapes)"
            )


def min_bdm(table_name: str, shapes: Counter) -> float:
    _check(table_name, shapes)
    table = load_table(table_name)
    total = 0.0
    for shape, n in shapes.items():
        total += float(table.values[shape].min()) + math.log2(n)
    return total


def _max_bdm_shape(table_name: str, shape: tuple[int, ...], n: int) -> float:
    values, reps, cum = _ranked(table_name, shape)
    length = int(cum[-1])
    if n <= length:
        full = int(np.searchsorted(cum, n, side="right"))  # entries used all their repetitions
        terms = list(values[:full] * reps[:full])
        used = int(cum[full - 1]) if full else 0
        if n > used:
            terms.append(float(values[full]) * (n - used))
        return math.fsum(terms)
    cycles, extra = divmod(n, length)
    terms = list(values * reps)
    terms.append(extra * math.log2(cycles + 1))
    terms.append((length - extra) * math.log2(cycles))
    return math.fsum(terms)


def max_bdm(table_name: str, shapes: Counter) -> float:
    _check(table_name, shapes)
    return math.fsum(_max_bdm_shape(table_name, shape, n) for shape, n in shapes.items())


def min_ent(shapes: Counter) -> float:
    total = 0.0
    p = 1 / len(shapes)
    for _ in shapes:
        total -= p * math.log2(p)
    return total


def max_ent(table_name: str, shapes: Counter) -> float:
    _check(table_name, shapes)
    used = sorted(min(n, int(_ranked(table_name, shape)[2][-1])) for shape, n in shapes.items())
    # Positions [used[i-1], used[i]) are used by the len(used) - i shapes that reach that far.
    total = sum(used)
    terms = []
    start = 0
    for i, stop in enumerate(used):
        count = len(used) - i
        if stop > start:
            p = count / total
            terms.append(-(stop - start) * p * math.log2(p))
        start = max(start, stop)
    return math.fsum(terms)
