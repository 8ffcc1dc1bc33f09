"""The plain-torch reference (``qubd.reference``) as a backend: every device, and the default kernel
of every primitive op (``QUBD_BACKEND=torch`` runs it everywhere)."""

from qubd.reference import blocks, ctm_score, order_statistics, quantize

DEVICE_TYPES = ("cpu", "cuda")
KERNELS = {
    "order_statistics": order_statistics.order_statistics,
    "quantize_to_grid": quantize.quantize_to_grid,
    "plane_histograms": blocks.plane_histograms,
    "weight_histograms": blocks.weight_histograms,
    "weight_histograms_batched": blocks.weight_histograms_batched,
    "ctm_score": ctm_score.ctm_score,
}
