"""The plain-torch reference registered as a backend for every device (``QUBD_BACKEND=torch``)."""

from qubd.backends.registry import register_kernel
from qubd.reference import blocks, ctm_score, order_statistics, quantize

DEVICES = ("cpu", "cuda")

register_kernel("order_statistics", "torch", DEVICES)(order_statistics.order_statistics)
register_kernel("quantize_to_grid", "torch", DEVICES)(quantize.quantize_to_grid)
register_kernel("plane_histograms", "torch", DEVICES)(blocks.plane_histograms)
register_kernel("weight_histograms", "torch", DEVICES)(blocks.weight_histograms)
register_kernel("weight_histograms_batched", "torch", DEVICES)(blocks.weight_histograms_batched)
register_kernel("ctm_score", "torch", DEVICES)(ctm_score.ctm_score)
