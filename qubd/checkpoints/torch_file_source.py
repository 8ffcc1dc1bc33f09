"""Tensors of PyTorch ``.bin`` / ``.pt`` files, loaded with ``torch.load(weights_only=True)`` only:
a pickle that needs anything beyond tensors and plain containers is refused, never executed.
Files in the zip format (``torch.save``'s default) are memory-mapped."""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import torch

from qubd.checkpoints.entries import TensorEntry
from qubd.checkpoints.errors import CheckpointError
from qubd.checkpoints.mapping_source import mapping_entries

PICKLE_PROTO = b"\x80"
TOO_DEEP = "refused: its containers are nested too deeply or contain themselves"


def looks_like_torch_file(path: Path) -> bool:
    """A zip archive (torch.save's format) or a bare pickle (its legacy format)."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head.startswith(PICKLE_PROTO)


def torch_file_entries(path: Path) -> list[TensorEntry]:
    is_zip = zipfile.is_zipfile(path)
    try:
        with warnings.catch_warnings():
            # a plain pickle of protocol > 2: torch warns before refusing it; the refusal says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except RecursionError:
        raise CheckpointError(f"{path}: {TOO_DEEP}") from None
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused to load: torch.load(weights_only=True) does not allow what this pickle holds "
            f"({_refusal(err)}); qubd never executes pickled code"
        ) from err
    except Exception as err:
        raise CheckpointError(
            f"{path}: cannot read this PyTorch file, truncated or corrupt ({_first_line(err)})"
        ) from err
    try:
        return [replace(e, file=str(path)) for e in mapping_entries(loaded)]
    except RecursionError:
        raise CheckpointError(f"{path}: {TOO_DEEP}") from None


def _refusal(err: Exception) -> str:
    """torch's reason (the first line of its explanation after "WeightsUnpickler error:", e.g. which
    global it refused, or which pickle opcode it does not support), without its advice to turn the
    protection off."""
    found = re.search(r"WeightsUnpickler error:\s*([^\n]*?)(?: Please use|\n|$)", str(err))
    reason = found.group(1).strip().rstrip(". ") if found else ""
    return reason or _first_line(err)


def _first_line(err: Exception) -> str:
    """The first sentence of the error, after its type unless that is a plain RuntimeError."""
    text = str(err).strip()
    line = text.splitlines()[0].split(". ")[0].rstrip(".") if text else ""
    if type(err) is RuntimeError and line:
        return line
    return f"{type(err).__name__}: {line}" if line else type(err).__name__
