"""Read tensors one at a time, the next one while the current one is being scored.

A background thread reads tensor k+1 from its file (faulting in its memory-mapped pages) while the
caller works on tensor k, so at most two tensors are in memory at once. The copy to the scoring
device happens in the caller's thread; on a GPU the kernels run asynchronously meanwhile. Small
tensors are read in the caller's thread: handing one to the reader and back costs more than that;
those whose bytes lie in a known range of their file (``span``) are read many at a time, with one
read of their file (``qubd.checkpoints.spans``, at most ``CHUNK_BYTES``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from qubd.checkpoints.entries import TensorEntry
from qubd.checkpoints.spans import Chunk

# Tensors of at most this many elements are read in the caller's thread.
INLINE_ELEMENTS = 2**14


def stream_tensors(
    entries: Sequence[TensorEntry], wanted: Callable[[TensorEntry], bool], device: torch.device
) -> Iterator[tuple[TensorEntry, torch.Tensor | None]]:
    """Every entry in order, with its tensor on ``device`` when ``wanted(entry)``, else None."""
    todo = [i for i, entry in enumerate(entries) if wanted(entry)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qubd-reader") as reader:
        # index -> the read in the background, the tensor read already, or None: read when its turn comes
        pending: dict[int, Future | torch.Tensor | None] = {}
        queue = iter(todo)
        upcoming = next(queue, None)

        def read_ahead() -> None:
            nonlocal upcoming
            if upcoming is None:
                return
            entry = entries[upcoming]
            if entry.numel > INLINE_ELEMENTS:
                pending[upcoming] = reader.submit(_read, entry)
                upcoming = next(queue, None)
            elif entry.span is None:
                pending[upcoming] = None
                upcoming = next(queue, None)
            else:
                indices, chunk = [upcoming], Chunk(entry)
                upcoming = next(queue, None)
                while upcoming is not None and _small(entries[upcoming]) and chunk.add(entries[upcoming]):
                    indices.append(upcoming)
                    upcoming = next(queue, None)
                pending.update(zip(indices, chunk.read(), strict=True))

        read_ahead()
        for i, entry in enumerate(entries):
            if i not in pending:
                yield entry, None
                continue
            item = pending.pop(i)
            if item is None:
                tensor = _read(entry)
            elif isinstance(item, Future):
                tensor = item.result()
            else:
                tensor = item
            if not pending:
                read_ahead()
            yield entry, tensor.to(device)
            del tensor, item


def _small(entry: TensorEntry) -> bool:
    return entry.numel <= INLINE_ELEMENTS


PAGE_BYTES = 4096


def _read(entry: TensorEntry) -> torch.Tensor:
    """Load the tensor and fault its pages in: a memory-mapped tensor is read from disk here, in the
    background, rather than by the kernels (one byte per page is touched; nothing is copied)."""
    tensor = entry.load()
    if tensor.device.type == "cpu" and tensor.is_contiguous() and tensor.numel():
        tensor.reshape(-1).view(torch.uint8)[::PAGE_BYTES].sum()
    return tensor
