"""Loading what qubd scores: ``nn.Module``, state dicts, ``.safetensors`` files, Hugging Face model
directories (sharded, with ``model.safetensors.index.json``), and PyTorch ``.bin`` / ``.pt`` files
(``torch.load(weights_only=True)`` only). Tensors are described up front from headers and read one
at a time."""

from qubd.checkpoints.eligibility import as_scorable, nonfinite_count, reason_kind, skip_reason
from qubd.checkpoints.entries import TensorEntry
from qubd.checkpoints.errors import CheckpointError
from qubd.checkpoints.filters import NameFilter
from qubd.checkpoints.paths import input_files
from qubd.checkpoints.source import Scorable, TensorSource, open_source
from qubd.checkpoints.stream import stream_tensors

__all__ = [
    "CheckpointError",
    "NameFilter",
    "Scorable",
    "TensorEntry",
    "TensorSource",
    "as_scorable",
    "input_files",
    "nonfinite_count",
    "open_source",
    "reason_kind",
    "skip_reason",
    "stream_tensors",
]
