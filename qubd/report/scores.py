"""What a score produced: per tensor, per plane, and summed over the model, against the baseline."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from qubd.checkpoints import reason_kind
from qubd.report.advice import BitDepthAdvice, advise
from qubd.report.baselines import ExpectedBaseline
from qubd.report.measure import BDM
from qubd.report.options import ScoreOptions
from qubd.report.summary import (
    Summary,
    summarize,
    summarize_expected,
    summarize_expected_totals,
    summarize_totals,
)


@dataclass(frozen=True)
class PlaneScore:
    """One bit-plane (0 = least significant; None for a total) summed over the scored tensors.

    ``bdm`` is the QuBD; the same record carries other measures' values (e.g. compressed bytes).
    ``z``: ``(bdm - baseline) / baseline_std`` (None without a std)."""

    plane: int | None
    bdm: float
    baseline: float | None
    baseline_std: float | None
    ratio: float | None
    z: float | None = None


@dataclass(slots=True)
class TensorScore:
    """One tensor: its measures (``values["bdm"]`` per plane, ...) and its baseline's, one dict per run
    (``baseline_runs``) or in closed form (``expected``, per measure); or why it was skipped. ``note``:
    how its range was handled where the plain rule does not apply (``qubd.report.range_notes``), else None."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    skipped: str | None = None
    values: dict[str, list[float]] = field(default_factory=dict)
    baseline_runs: list[dict[str, list[float]]] = field(default_factory=list)
    note: str | None = None
    expected: dict[str, ExpectedBaseline] = field(default_factory=dict)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def planes(self) -> list[float] | None:
        """QuBD per plane, plane 0 the least significant; None when skipped."""
        return self.values.get(BDM)

    def summary(self, measure: str = BDM) -> Summary:
        return _summary([self], measure)

    def total(self, measure: str = BDM) -> Summary:
        return _summary([self], measure, totals=True)

    def advice(self, margin: float) -> BitDepthAdvice | None:
        return advise(self.summary(), margin)


@dataclass
class ReportData:
    """The plain record of a model's or checkpoint's QuBD (``qubd.report.report.Report`` adds its
    views): ``tensors`` in checkpoint order (skipped ones with a reason), and their sums per plane
    (``planes``) and overall (``total``), against the baseline."""

    source: str
    options: ScoreOptions
    tensors: list[TensorScore]
    device: str = "cpu"
    excluded: int = 0
    seconds: float | None = None
    reference: str | None = None  # the reference checkpoint of baseline "reference"

    @property
    def scored(self) -> list[TensorScore]:
        return [t for t in self.tensors if t.skipped is None]

    @property
    def skipped(self) -> list[TensorScore]:
        return [t for t in self.tensors if t.skipped is not None]

    @property
    def weights(self) -> int:
        """Number of weights scored."""
        return sum(t.numel for t in self.scored)

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(reason_kind(t.skipped) for t in self.skipped))

    def summary(self, measure: str = BDM) -> Summary:
        """``measure`` per plane (or its one value) summed over the scored tensors."""
        return _summary(self.scored, measure)

    def total_summary(self, measure: str = BDM) -> Summary:
        return _summary(self.scored, measure, totals=True)

    @property
    def planes(self) -> list[PlaneScore]:
        """QuBD per plane over the model, plane 0 the least significant."""
        return plane_scores(self.summary())

    @property
    def total(self) -> PlaneScore:
        """QuBD summed over planes and tensors."""
        return plane_scores(self.total_summary(), total=True)[0]

    @property
    def advice(self) -> BitDepthAdvice | None:
        """The suggested bit depth over the whole model (None without a baseline)."""
        return advise(self.summary(), self.options.advice_margin)

    def settings_line(self, reference_name: Callable[[str], str] = str, baseline_note: str = "") -> str:
        """``settings_text`` of this report, its baseline with the reference checkpoint (as
        ``reference_name`` shows it) or the shuffles' seed and count, then ``baseline_note``, then
        the layout when it is not the default."""
        o = self.options
        baseline = o.baseline
        if self.reference is not None:
            baseline += f" ({reference_name(self.reference)})"
        elif o.runs:
            baseline += f" (seed {o.seed}, {o.repeats} run{'s' * (o.repeats > 1)})"
        return settings_text(o.bits, o.clip, baseline + baseline_note) + o.layout_note


class ModelSums(NamedTuple):
    """A report's per-plane scores, total and advice, from one sum over its tensors (each of
    ``ReportData.planes``, ``.total`` and ``.advice`` sums them anew)."""

    planes: list[PlaneScore]
    total: PlaneScore
    advice: BitDepthAdvice | None


def model_sums(report: ReportData) -> ModelSums:
    summary = report.summary()
    total = plane_scores(report.total_summary(), total=True)[0]
    return ModelSums(plane_scores(summary), total, advise(summary, report.options.advice_margin))


def settings_text(bits: int, clip: float | None, baseline: str) -> str:
    """Bits, range and baseline in words, as the titles of figures and tables (of reports and training
    logs alike) name them: "8 bits, clip 99.9th percentile, baseline expected"."""
    span = "min/max range" if clip is None else f"clip {clip:g}th percentile"
    return f"{bits} bits, {span}, baseline {baseline}"


def _summary(tensors: list[TensorScore], measure: str, totals: bool = False) -> Summary:
    """``measure`` summed over ``tensors`` against their closed-form baselines when every tensor has
    one for it, else against their sampled runs (none: no baseline)."""
    values = [t.values[measure] for t in tensors]
    if tensors and all(measure in t.expected for t in tensors):
        expected = [t.expected[measure] for t in tensors]
        combine = summarize_expected_totals if totals else summarize_expected
        return combine(values, [e.mean for e in expected], [e.std for e in expected])
    combine = summarize_totals if totals else summarize
    return combine(values, [[run[measure] for run in t.baseline_runs] for t in tensors])


def plane_scores(summary: Summary, total: bool = False) -> list[PlaneScore]:
    n = len(summary.values)
    baseline = summary.baseline or [None] * n
    std = summary.baseline_std or [None] * n
    ratio = summary.ratio or [None] * n
    z = summary.z or [None] * n
    return [
        PlaneScore(None if total else i, summary.values[i], baseline[i], std[i], ratio[i], z[i])
        for i in range(n)
    ]
