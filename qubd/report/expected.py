"""The expected BDM of a binary plane's shuffled self, and its standard deviation, in closed form.

A shuffle keeps a plane's ``k`` ones among its ``n`` cells and arranges them uniformly at random;
the plane's BDM (4x4 blocks, docs/design.md) then depends only on which codes its ``B`` complete blocks
show. Codes with the same number of ones ``j`` (a popcount class; 17 classes) are equally likely:
one block shows a given code of class ``j`` with probability ``(k)_j (n-k)_(16-j) / (n)_16``
(falling factorials), so every sum over the 65536 codes is a sum over 17 classes, with the class's
code count, sum of CTM and sum of squared CTM precomputed.

Mean: ``E[BDM] = sum_c CTM(c) P(N_c > 0) + E[log2 N_c; N_c > 0]``, each block count ``N_c`` taken
as binomial(B, p_c) (blocks treated as independent draws: see docs/baselines.md for the bias this
leaves, measured against sampled shuffles).

Standard deviation: the counts are Poissonised (``N_c`` independent Poisson(B p_c)) and the BDM is
conditioned, to second order (a linear regression), on the two sums that a real arrangement fixes:
the number of blocks ``sum_c N_c = B`` and the ones they hold ``sum_c popcount(c) N_c``. Without
the second condition the standard deviation is up to 1.5x too large at moderate densities (many
mid-frequency codes). When cells outside the complete blocks exist, the ones inside the blocks
vary hypergeometrically, and that variation is added back through the regression slope. A plane
with one block (B = 1) is computed exactly; an empty or full plane has standard deviation 0.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from qubd.ctm.tables import ctm16

# scipy is imported where it is used: scipy.stats costs ~0.4 s to import, which `import qubd`, a
# report under another baseline and `qubd plot` need not pay.

BLOCK_SIDE = 4
BLOCK_CELLS = BLOCK_SIDE * BLOCK_SIDE
CLASSES = np.arange(BLOCK_CELLS + 1)
# Count distributions are summed over mean +- this many standard deviations (plus a few counts):
# the mass left out is far below float64 resolution of the sums.
WINDOW_SIGMAS = 12.0
WINDOW_PAD = 12


@cache
def class_sums() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per popcount class j = 0..16: number of codes, sum of their CTM, sum of their squared CTM."""
    ctm = ctm16().numpy()
    popcount = np.unpackbits(np.arange(1 << BLOCK_CELLS, dtype=">u2").view(np.uint8).reshape(-1, 2), axis=1)
    popcount = popcount.sum(axis=1)
    codes = np.bincount(popcount, minlength=BLOCK_CELLS + 1).astype(np.float64)
    ctm_sum = np.bincount(popcount, weights=ctm, minlength=BLOCK_CELLS + 1)
    ctm_square_sum = np.bincount(popcount, weights=ctm * ctm, minlength=BLOCK_CELLS + 1)
    return codes, ctm_sum, ctm_square_sum


def _planes(cells, blocks, ones) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int64 1-D arrays of one entry per plane, each argument broadcast to the others' length."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.int64) for a in (cells, blocks, ones)))
    return tuple(a.reshape(-1) for a in arrays)


def _class_sum(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_j values[:, j] * weights[j]``, added j = 0, 1, ... in this order for every row, so that a
    plane's number does not depend on the other planes computed with it (a matrix product may sum
    in another order depending on the number of rows)."""
    total = np.zeros(values.shape[0], dtype=np.float64)
    for j in range(values.shape[1]):
        total += values[:, j] * weights[j]
    return total


def code_probabilities(cells: np.ndarray | int, ones: np.ndarray) -> np.ndarray:
    """[planes, 17]: the probability that one block shows one given code of class j, for planes of
    ``cells`` cells (one number, or one per plane) holding ``ones`` ones arranged uniformly at random
    (requires cells >= 16)."""
    from scipy.special import gammaln

    k = np.asarray(ones, dtype=np.float64)[:, None]
    n = np.broadcast_to(np.asarray(cells, dtype=np.float64), k.shape[:1])[:, None]
    j = CLASSES[None, :].astype(np.float64)
    zeros = n - k
    possible = (j <= k) & (BLOCK_CELLS - j <= zeros)
    # (x)_m = Gamma(x + 1) / Gamma(x - m + 1), in logs; impossible classes masked before exp.
    log_p = (
        gammaln(k + 1)
        - gammaln(np.where(possible, k - j, 0) + 1)
        + gammaln(zeros + 1)
        - gammaln(np.where(possible, zeros - (BLOCK_CELLS - j), 0) + 1)
        - (gammaln(n + 1) - gammaln(n - BLOCK_CELLS + 1))
    )
    return np.where(possible, np.exp(np.where(possible, log_p, 0.0)), 0.0)


def _windows(mean: np.ndarray, sd: np.ndarray, upper: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Counts 1..: for each distribution d, its window of counts >= 1; returns (owner, count)."""
    lo = np.maximum(1, np.floor(mean - WINDOW_SIGMAS * sd - WINDOW_PAD)).astype(np.int64)
    hi = np.minimum(upper, np.ceil(mean + WINDOW_SIGMAS * sd + WINDOW_PAD)).astype(np.int64)
    lengths = np.maximum(hi - lo + 1, 0)
    owner = np.repeat(np.arange(mean.size), lengths)
    starts = np.cumsum(lengths) - lengths
    count = lo[owner] + np.arange(owner.size) - starts[owner]
    return owner, count


def _log2_moments(pmf: np.ndarray, owner: np.ndarray, count: np.ndarray, size: int) -> tuple:
    """E[log2 N; N > 0], E[log2^2 N; N > 0], E[N log2 N] per distribution, from window sums."""
    log2 = np.log2(count)
    first = np.bincount(owner, weights=pmf * log2, minlength=size)
    second = np.bincount(owner, weights=pmf * log2 * log2, minlength=size)
    with_count = np.bincount(owner, weights=pmf * count * log2, minlength=size)
    return first, second, with_count


def expected_bdm(cells, blocks, ones) -> np.ndarray:
    """E[BDM] of each plane (``ones[i]`` ones among ``cells`` cells, ``blocks`` complete 4x4 blocks;
    ``cells`` and ``blocks`` one number or one per plane) over uniformly random arrangements:
    float64 [planes]. A plane's number does not depend on the other planes passed with it."""
    cells, blocks, ones = _planes(cells, blocks, ones)
    mean = np.zeros(ones.shape, dtype=np.float64)
    some = blocks > 0
    if not some.any():
        return mean
    cells, blocks, ones = cells[some], blocks[some], ones[some]
    codes, ctm_sum, _ = class_sums()
    p = code_probabilities(cells, ones)  # [planes, 17]
    with np.errstate(divide="ignore"):  # p = 1 (an empty or full plane): log1p(-1) = -inf, seen = 1
        seen = -np.expm1(blocks[:, None] * np.log1p(-np.minimum(p, 1.0)))  # P(N_c > 0)
    flat = p.reshape(-1)
    trials = np.repeat(blocks, CLASSES.size)
    count_mean = trials * flat
    owner, count = _windows(count_mean, np.sqrt(count_mean * (1 - flat)), trials)
    from scipy.stats import binom

    pmf = binom.pmf(count, trials[owner], flat[owner])
    log2_mean = np.bincount(owner, weights=pmf * np.log2(count), minlength=flat.size).reshape(p.shape)
    mean[some] = _class_sum(seen, ctm_sum) + _class_sum(log2_mean, codes)
    return mean


def bdm_std(cells, blocks, ones) -> np.ndarray:
    """Standard deviation of each plane's BDM over uniformly random arrangements (see the module
    docstring for the approximation; arguments as ``expected_bdm``'s): float64 [planes]."""
    cells, blocks, ones = _planes(cells, blocks, ones)
    std = np.zeros(ones.shape, dtype=np.float64)
    varies = (ones > 0) & (ones < cells) & (blocks > 0)
    one_block = varies & (blocks == 1)
    if one_block.any():  # one block: its code is the whole randomness, and log2(1) = 0
        _, ctm_sum, ctm_square_sum = class_sums()
        p = code_probabilities(cells[one_block], ones[one_block])
        mean = _class_sum(p, ctm_sum)
        std[one_block] = np.sqrt(np.maximum(_class_sum(p, ctm_square_sum) - mean * mean, 0.0))
    many = varies & (blocks > 1)
    if many.any():
        std[many] = _many_blocks_std(cells[many], blocks[many], ones[many])
    return std


def _many_blocks_std(cells: np.ndarray, blocks: np.ndarray, ones: np.ndarray) -> np.ndarray:
    """``bdm_std`` of planes with more than one block and neither empty nor full."""
    codes, ctm_sum, ctm_square_sum = class_sums()
    p = code_probabilities(cells, ones)
    lam = blocks[:, None] * p  # [planes, 17] Poisson mean of one code's count
    flat = lam.reshape(-1)
    owner, count = _windows(flat, np.sqrt(flat), np.inf)
    from scipy.stats import poisson

    pmf = poisson.pmf(count, flat[owner])
    log_first, log_second, log_with_count = (
        m.reshape(lam.shape) for m in _log2_moments(pmf, owner, count, flat.size)
    )
    absent = np.exp(-lam)
    # Per code of class j: g = CTM * a + b with a = 1{N > 0}, b = log2(N) 1{N > 0}.
    var_a = absent * (1 - absent)
    cov_ab = log_first * absent
    var_b = log_second - log_first**2
    cov_a_count = lam * absent
    cov_b_count = log_with_count - lam * log_first
    var_g = _class_sum(var_a, ctm_square_sum) + 2 * _class_sum(cov_ab, ctm_sum) + _class_sum(var_b, codes)
    cov_g_count = cov_a_count * ctm_sum + cov_b_count * codes  # [planes, 17], summed over the class
    # Regress on X = (sum_c N_c, sum_c popcount(c) N_c): the block count and the ones in blocks.
    weights = np.stack([np.ones_like(CLASSES), CLASSES]).astype(np.float64)  # [2, 17]
    cov_gx = np.stack([_class_sum(cov_g_count, w) for w in weights], axis=1)  # [planes, 2]
    spread = lam * codes
    cov_xx = np.stack(
        [np.stack([_class_sum(spread, a * b) for b in weights], axis=1) for a in weights], axis=1
    )  # [planes, 2, 2]
    slope = np.stack([np.linalg.lstsq(c, v, rcond=None)[0] for c, v in zip(cov_xx, cov_gx, strict=True)])
    explained = slope[:, 0] * cov_gx[:, 0] + slope[:, 1] * cov_gx[:, 1]
    k = ones.astype(np.float64)
    n = cells.astype(np.float64)
    block_cells = (blocks * BLOCK_CELLS).astype(np.float64)
    # Ones inside the blocks: hypergeometric when some cells lie outside every block.
    ones_in_blocks_var = block_cells * (k / n) * (1 - k / n) * (n - block_cells) / (n - 1)
    var = var_g - explained + slope[:, 1] ** 2 * ones_in_blocks_var
    return np.sqrt(np.maximum(var, 0.0))
