"""The Triton backend: the kernel of each primitive op, named as the op (a module of its own, so that
the names do not hide the package's modules ``ctm_score`` and ``order_statistics``)."""

# ruff: noqa: F401
from qubd.backends import scores_of_histograms
from qubd.backends.triton.ctm_score import ctm_score
from qubd.backends.triton.histograms import plane_histograms, weight_histograms, weight_histograms_batched
from qubd.backends.triton.order_statistics import order_statistics
from qubd.backends.triton.quantize import quantize_to_grid

# The many small tensors this op is for are selected as fast by torch.kthvalue: the reference serves.
from qubd.reference.order_statistics import order_statistics_batched

# A digit's counts per prefix (for sharded tensors): torch.bincount serves on CUDA.
from qubd.reference.radix_counts import radix_digit_counts

# torch.aminmax is one fused reduction on CUDA already: the reference serves.
from qubd.reference.value_bounds import value_bounds

weight_scores = scores_of_histograms.per_tensor(weight_histograms, ctm_score)
# Each plane's sum has a fixed order (ctm_score's fixed split), so a batch scores as one at a time.
weight_scores_batched = scores_of_histograms.one_launch(weight_histograms_batched, ctm_score)
weight_scores_and_ones_batched = scores_of_histograms.with_ones_in_one_launch(
    weight_histograms_batched, ctm_score, quantize_to_grid
)

DEVICE_TYPES = ("cuda", "cpu")
