"""pybdm's BDM, exactly and fast: 1D/2D, k-ary alphabets, partitions, normalised BDM, block entropy,
perturbation analysis, and k-ary QuBD of 2-bit weights.

Modules, one job each: :mod:`~qubd.bdm.inputs` (checking data), :mod:`~qubd.bdm.partitions`
(decompose), :mod:`~qubd.bdm.blocks` (block codes and symbol normalisation), :mod:`~qubd.bdm.lookup`
(CTM values), :mod:`~qubd.bdm.core` (the ``BDM`` class: count and aggregate), :mod:`~qubd.bdm.native`
(the C++ count and lookup of k-ary 1D blocks on CPU tensors), :mod:`~qubd.bdm.normalize` (pybdm's
bounds for normalised values), :mod:`~qubd.bdm.perturbation`, :mod:`~qubd.bdm.kary`.
"""

from qubd.bdm.core import BDM, BlockCounts
from qubd.bdm.kary import KaryQuBD, kary_qubd
from qubd.bdm.lookup import CTMMissingWarning
from qubd.bdm.partitions import BlockGroup
from qubd.bdm.perturbation import PerturbationExperiment, perturbation_deltas, perturbation_table

__all__ = [
    "BDM",
    "BlockCounts",
    "BlockGroup",
    "CTMMissingWarning",
    "KaryQuBD",
    "PerturbationExperiment",
    "kary_qubd",
    "perturbation_deltas",
    "perturbation_table",
]
