"""Triton kernels for every primitive op, registered for CUDA tensors, and for CPU tensors where they
run under ``TRITON_INTERPRET=1`` (how CI checks them; never the CPU default: ``qubd.ops.dispatch``).

* ``histograms``: the fused pass (read in the stored dtype, quantise, bit-planes, 4x4 block codes,
  privatised per-plane histograms) for ``weight_histograms`` and ``plane_histograms``, and
  ``weight_histograms_batched`` for many small tensors in one launch;
* ``quantize``: ``quantize_to_grid``, elementwise, with the same per-element math;
* ``order_statistics``: exact radix select over the float bits (robust clipping, any size);
* ``ctm_score``: the CTM gather + log2 reduction of the histograms.

``qubd.backends.triton.kernels`` is the backend: the kernel of each op, named as the op. Importing
it without Triton raises ImportError: the backend is then unavailable.
"""
