"""pybdm's BDM, exactly and fast: 1D/2D, k-ary alphabets, partitions, normalised BDM, block entropy,
perturbation analysis, and k-ary QuBD of 2-bit weights.

Modules, one job each, in import order: :mod:`~qubd.bdm.inputs` (checking data),
:mod:`~qubd.bdm.blocks` (block groups, block codes and symbol normalisation),
:mod:`~qubd.bdm.counts` (counting distinct blocks), :mod:`~qubd.bdm.native` (the C++ count and
lookup of k-ary 1D blocks on CPU tensors), :mod:`~qubd.bdm.lookup` (the CTM table of an alphabet and
its values), :mod:`~qubd.bdm.partitions` (pybdm's partition classes: decompose, and count by the
fastest route), :mod:`~qubd.bdm.normalize` (pybdm's bounds for normalised values),
:mod:`~qubd.bdm.core` (the ``BDM`` class), :mod:`~qubd.bdm.perturbation`, :mod:`~qubd.bdm.kary`.
docs/design.md describes what is computed.
"""

from qubd.bdm.blocks import BlockGroup
from qubd.bdm.core import BDM
from qubd.bdm.counts import BlockCounts
from qubd.bdm.kary import KaryQuBD, kary_qubd
from qubd.bdm.lookup import CTMLookup, CTMMissingWarning
from qubd.bdm.partitions import Partition, PartitionCorrelated, PartitionIgnore, PartitionRecursive
from qubd.bdm.perturbation import PerturbationExperiment, perturbation_deltas, perturbation_table

__all__ = [
    "BDM",
    "BlockCounts",
    "BlockGroup",
    "CTMLookup",
    "CTMMissingWarning",
    "KaryQuBD",
    "Partition",
    "PartitionCorrelated",
    "PartitionIgnore",
    "PartitionRecursive",
    "PerturbationExperiment",
    "kary_qubd",
    "perturbation_deltas",
    "perturbation_table",
]
