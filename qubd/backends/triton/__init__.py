"""Triton kernels for every primitive op, registered for CUDA tensors, and for CPU tensors where they
run under ``TRITON_INTERPRET=1`` (how CI checks them; never a CPU default, see the registry).

* ``histograms``: the fused pass (read in the stored dtype, quantise, bit-planes, 4x4 block codes,
  privatised per-plane histograms) for ``weight_histograms`` and ``plane_histograms``, and
  ``weight_histograms_batched`` for many small tensors in one launch;
* ``quantize``: ``quantize_to_grid``, elementwise, with the same per-element math;
* ``order_statistics``: exact radix select over the float bits (robust clipping, any size);
* ``ctm_score``: the CTM gather + log2 reduction of the histograms.

Importing this package without Triton raises ImportError, which the registry records as the reason
the backend is unavailable.
"""

from qubd.backends.registry import register_kernel
from qubd.backends.triton import ctm_score, histograms, order_statistics, quantize

DEVICES = ("cuda", "cpu")

register_kernel("order_statistics", "triton", DEVICES)(order_statistics.order_statistics)
register_kernel("quantize_to_grid", "triton", DEVICES)(quantize.quantize_to_grid)
register_kernel("plane_histograms", "triton", DEVICES)(histograms.plane_histograms)
register_kernel("weight_histograms", "triton", DEVICES)(histograms.weight_histograms)
register_kernel("weight_histograms_batched", "triton", DEVICES)(histograms.weight_histograms_batched)
register_kernel("ctm_score", "triton", DEVICES)(ctm_score.ctm_score)
