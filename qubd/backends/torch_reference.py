"""The plain-torch reference (``qubd.reference``) as a backend: every device, and the default kernel
of every primitive op (``QUBD_BACKEND=torch`` runs it everywhere)."""

# The kernel of each primitive op, named as the op (qubd.ops.dispatch registers them).
# ruff: noqa: F401
from qubd.backends import scores_of_histograms
from qubd.reference.blocks import plane_histograms, weight_histograms, weight_histograms_batched
from qubd.reference.ctm_score import ctm_score
from qubd.reference.order_statistics import order_statistics, order_statistics_batched
from qubd.reference.quantize import quantize_to_grid
from qubd.reference.radix_counts import radix_digit_counts
from qubd.reference.value_bounds import value_bounds

weight_scores = scores_of_histograms.per_tensor(weight_histograms, ctm_score)
# One tensor at a time: torch's sum over the rows of a taller matrix may round differently, and a
# batch must give the numbers of one call per tensor.
weight_scores_batched = scores_of_histograms.one_at_a_time(weight_scores)
weight_scores_and_ones_batched = scores_of_histograms.with_ones_per_tensor(
    weight_histograms, ctm_score, quantize_to_grid
)

DEVICE_TYPES = ("cpu", "cuda")
