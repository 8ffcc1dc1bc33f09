"""Triton kernels for every primitive op, registered for CUDA tensors, and for CPU tensors where they
run under ``TRITON_INTERPRET=1`` (how CI checks them; never the CPU default: ``qubd.ops.dispatch``).

* ``histograms``: the fused pass (read in the stored dtype, quantise, bit-planes, 4x4 block codes,
  privatised per-plane histograms) for ``weight_histograms`` and ``plane_histograms``, and
  ``weight_histograms_batched`` for many small tensors in one launch;
* ``quantize``: ``quantize_to_grid``, elementwise, with the same per-element math;
* ``order_statistics``: exact radix select over the float bits (robust clipping, any size);
* ``ctm_score``: the CTM gather + log2 reduction of the histograms.

Importing this package without Triton raises ImportError: the backend is then unavailable.
"""

# The kernel of each primitive op, named as the op (qubd.ops.dispatch registers them).
# ruff: noqa: F401
from qubd.backends.triton.ctm_score import ctm_score
from qubd.backends.triton.histograms import plane_histograms, weight_histograms, weight_histograms_batched
from qubd.backends.triton.order_statistics import order_statistics
from qubd.backends.triton.quantize import quantize_to_grid

DEVICE_TYPES = ("cuda", "cpu")
