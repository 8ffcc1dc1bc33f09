"""What a score would do, without computing: which tensors of a model or checkpoint would be scored
and which skipped (and why), from the checkpoint's headers and names only (no tensor is read)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qubd.checkpoints import Scorable, open_source, reason_kind, skip_reason
from qubd.report.frames import require_pandas

if TYPE_CHECKING:
    import pandas


@dataclass(frozen=True)
class PlannedTensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    skipped: str | None  # why it would not be scored; None when it would be

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Description:
    """The tensors of ``source`` in order, each scored or skipped with a reason; ``excluded`` counts
    those the name filter left out."""

    source: str
    tensors: list[PlannedTensor]
    excluded: int = 0

    @property
    def scored(self) -> list[PlannedTensor]:
        return [t for t in self.tensors if t.skipped is None]

    @property
    def skipped(self) -> list[PlannedTensor]:
        return [t for t in self.tensors if t.skipped is not None]

    @property
    def weights(self) -> int:
        return sum(t.numel for t in self.scored)

    def summary(self) -> str:
        """One line: how many tensors and weights would be scored, how many skipped and why."""
        reasons = Counter(reason_kind(t.skipped) for t in self.skipped)
        parts = [f"{n} {kind}" for kind, n in reasons.items()]
        if self.excluded:
            parts.append(f"{self.excluded} excluded by name")
        why = f" ({', '.join(parts)})" if parts else ""
        return (
            f"{self.source}: would score {len(self.scored)} of {len(self.tensors)} tensors "
            f"({self.weights:,} weights); {len(self.skipped)} skipped{why}"
        )

    def lines(self) -> list[str]:
        """The summary, then a line per tensor: ``score`` or ``skip``, name, shape, dtype, reason."""
        width = max((len(t.name) for t in self.tensors), default=0)
        rows = [self.summary()]
        for t in self.tensors:
            shape = "x".join(map(str, t.shape)) or "scalar"
            verdict = "score" if t.skipped is None else "skip "
            reason = "" if t.skipped is None else f"  {t.skipped}"
            rows.append(f"  {verdict} {t.name:<{width}}  {shape:>12}  {t.dtype}{reason}")
        return rows

    def __repr__(self) -> str:
        return f"<qubd.Description {self.summary()}>"

    def to_pandas(self) -> pandas.DataFrame:
        """One row per tensor: name, shape, dtype, numel, scored, skipped (needs the ``pandas`` extra)."""
        rows = [[t.name, t.shape, t.dtype, t.numel, t.skipped is None, t.skipped] for t in self.tensors]
        return require_pandas().DataFrame(
            rows, columns=["name", "shape", "dtype", "numel", "scored", "skipped"]
        )


def describe(
    obj: Scorable, include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None
) -> Description:
    """Which tensors ``qubd.score(obj, include=..., exclude=...)`` would score and skip, without reading
    any tensor. Tensors holding NaN/Inf are found only by scoring (an error, or skipped)."""
    with open_source(obj, include, exclude) as source:
        tensors = [
            PlannedTensor(e.name, tuple(e.shape), e.dtype, e.skipped or skip_reason(e.shape, e.dtype))
            for e in source.entries
        ]
        return Description(source.description, tensors, source.excluded)
