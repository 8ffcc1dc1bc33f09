"""Score a model or checkpoint: stream its tensors, measure each and its baselines, collect a Report."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable

import torch

from qubd.checkpoints import (
    Scorable,
    TensorEntry,
    TensorSource,
    as_scorable,
    nonfinite_count,
    open_source,
    reason_kind,
    skip_reason,
    stream_tensors,
)
from qubd.checkpoints.collector import collector_paused
from qubd.checkpoints.eligibility import MIN_SIDE
from qubd.layouts import CONV_DIMS, DEFAULT, arrange, arranged_shape
from qubd.report.baselines import baseline_tensors
from qubd.report.errors import ReportError
from qubd.report.measure import BDM, measure_many
from qubd.report.options import REINIT, ScoreOptions
from qubd.report.progress import ProgressHook, weights_progress
from qubd.report.range_notes import FLOAT64_GRID, tiny_span_note, widened
from qubd.report.reference import open_reference, pair_with_reference, resolve_baseline
from qubd.report.report import Report
from qubd.report.scores import TensorScore

# Tensors are scored in groups of up to this many weights or tensors (see _Group).
GROUP_WEIGHTS = 2**24
GROUP_TENSORS = 1024
# With a progress bar, fewer weights, so that the bar advances tensor by tensor as large tensors are
# scored (and by 64 small ones: a group of 4 cost more than scoring its tensors).
PROGRESS_GROUP_WEIGHTS = 2**20
PROGRESS_GROUP_TENSORS = 64
# The batched ops name a tensor by its place in the batch; errors name it by its name and file.
BATCH_INDEX = re.compile(r"^weights\[\d+\]:?\s*")


def score(
    obj: Scorable,
    bits: int = 8,
    clip: float | None = 99.9,
    baseline: str = "expected",
    *,
    reference: Scorable | None = None,
    seed: int = 0,
    repeats: int = 1,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    binary: bool = False,
    compressors: Iterable[str] = (),
    nonfinite: str = "error",
    device: str = "auto",
    advice_margin: float = 1.0,
    layout: str = DEFAULT,
    manifold: bool = False,
    progress: bool = False,
) -> Report:
    """The QuBD report of ``obj``: an ``nn.Module``, a state dict, or checkpoint path(s) (a
    ``.safetensors`` file, a Hugging Face model directory, a ``.bin``/``.pt`` file).

    Each eligible tensor (docs/design.md) is quantised to ``bits`` bits over its min/max (``clip=None``) or
    its ``clip`` percentile range and scored per bit-plane; ``clip`` defaults to 99.9 (the paper's
    code) here and in the CLI, but to None in ``qubd.ops``. ``baseline``: "expected" (default: the mean
    and std of each plane's QuBD over random arrangements of the tensor's values, in closed form,
    no random numbers), "shuffle" (the tensor's values permuted; ``repeats`` runs seeded by
    ``seed``), "reinit" (modules only) or "none". ``reference`` (anything ``score`` takes) makes the
    baseline each tensor's namesake there, scored alike (baseline "reference"; see
    ``qubd.report.reference``). ``binary`` adds
    BDM(W > 0), ``compressors`` ("gzip", "lzma") the compressed sizes of the packed bit-planes
    (these have no closed form: against "expected" they carry no baseline; use "shuffle").
    ``layout``: the 2-D view a conv kernel is scored as (``qubd.layouts``: "default" ``flatten(1)``,
    "in_channel_rows", "channels_last", "square", "mosaic"); ``manifold`` adds the BDM of each
    tensor's tiled manifold (``qubd.report.manifold``). ``include`` / ``exclude``: name patterns.
    Tensors with NaN/Inf raise ReportError unless ``nonfinite="skip"``. ``progress`` shows a progress
    bar on stderr.
    """
    options = ScoreOptions(
        bits=bits,
        clip=clip,
        baseline=resolve_baseline(baseline, reference),
        seed=seed,
        repeats=repeats,
        binary=binary,
        compressors=tuple(compressors),
        nonfinite=nonfinite,
        device=device,
        advice_margin=advice_margin,
        layout=layout,
        manifold=manifold,
    )
    if scored_by_every_rank(obj):
        from qubd.distributed.scoring import score_model

        if reference is not None:
            raise ReportError("a reference baseline is not supported on a model scored by every rank")
        return score_model(obj, options, include, exclude)
    with (
        collector_paused(),  # listing 100,000 tensors makes as many records: see qubd.checkpoints.collector
        open_source(obj, include, exclude) as source,
        open_reference(reference, include, exclude) as ref,
    ):
        return score_source(source, options, progress=progress, reference=ref)


def scored_by_every_rank(obj: Scorable) -> bool:
    """A DDP / FSDP2 / tensor-parallel model: every rank calls ``score`` and scores its part."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return False
    from qubd.distributed.scoring import is_distributed_model

    return is_distributed_model(obj)


def score_source(
    source: TensorSource, options: ScoreOptions, progress: bool = False, reference: TensorSource | None = None
) -> Report:
    """Score every tensor of an open source (see ``score``); ``reference`` is the open reference
    source of baseline "reference"."""
    if options.baseline == REINIT and not source.is_module:
        raise ReportError(
            f"{source.description}: the 'reinit' baseline needs an nn.Module (a checkpoint has no "
            "architecture to re-initialise); use 'expected' or 'shuffle'"
        )
    source = pair_with_reference(source, reference, options, _eligible)
    device = options.torch_device()
    if not any(_eligible(e) for e in source.entries):
        raise ReportError(f"{source.description}: no eligible tensors ({_why_none(source)})")
    started = time.perf_counter()
    tensors = score_entries(source.entries, options, progress)
    report = Report(
        source=source.description,
        options=options,
        tensors=tensors,
        device=str(device),
        excluded=source.excluded,
        seconds=time.perf_counter() - started,
        reference=None if reference is None else reference.description,
    )
    report.inputs = source.inputs + (() if reference is None else reference.inputs)
    if not report.scored:
        raise ReportError(f"{source.description}: no tensor could be scored ({_why_none(source, report)})")
    return report


def score_entries(
    entries: list[TensorEntry], options: ScoreOptions, progress: bool = False
) -> list[TensorScore]:
    """A TensorScore for every entry, in order: scored, or skipped with the reason."""
    device = options.torch_device()
    tensors = []
    group = _Group(options, progress)

    reasons = [_metadata_skip(e) or _layout_skip(e, options.layout) for e in entries]
    scored = {id(e) for e, reason in zip(entries, reasons, strict=True) if reason is None}
    total = sum(e.numel for e, reason in zip(entries, reasons, strict=True) if reason is None)
    with weights_progress(total, progress) as advance, torch.no_grad(), collector_paused():
        streamed = stream_tensors(entries, lambda e: id(e) in scored, device)
        for (entry, w), reason in zip(streamed, reasons, strict=True):
            result = TensorScore(entry.name, entry.shape, entry.dtype)
            tensors.append(result)
            if w is None:
                result.skipped = reason
                continue
            group.add(entry, arrange(as_scorable(w), options.layout), result)
            del w
            if group.full():
                group.score(advance)
        group.score(advance)
    return tensors


def _metadata_skip(entry: TensorEntry) -> str | None:
    """Why the entry is not scored, known without reading it (tied, 1-D, ...), or None."""
    return entry.skipped or skip_reason(entry.shape, entry.dtype)


def _layout_skip(entry: TensorEntry, layout: str) -> str | None:
    """Why a tensor that has a 4x4 block as ``flatten(1)`` has none under ``layout``, or None."""
    if layout == DEFAULT or len(entry.shape) != CONV_DIMS:  # scored as flatten(1): nothing to add
        return None
    rows, cols = arranged_shape(entry.shape, layout)
    if min(rows, cols) < MIN_SIDE:
        return f"side < {MIN_SIDE} (a {rows}x{cols} matrix, layout {layout})"
    return None


def _eligible(entry: TensorEntry) -> bool:
    return _metadata_skip(entry) is None


class _Group:
    """Tensors waiting to be scored together: up to ``GROUP_WEIGHTS`` weights or ``GROUP_TENSORS``
    tensors, so that the many small tensors of a model share batched ops (on a GPU, one launch and
    one sync for all of them) while a large tensor is scored on its own, as soon as it is read."""

    def __init__(self, options: ScoreOptions, progress: bool = False):
        self.options = options
        self.limits = (
            (PROGRESS_GROUP_WEIGHTS, PROGRESS_GROUP_TENSORS) if progress else (GROUP_WEIGHTS, GROUP_TENSORS)
        )
        self.members: list[tuple[TensorEntry, torch.Tensor, TensorScore]] = []
        self.weights = 0

    def add(self, entry: TensorEntry, w: torch.Tensor, result: TensorScore) -> None:
        self.members.append((entry, w, result))
        self.weights += w.numel()

    def full(self) -> bool:
        return self.weights >= self.limits[0] or len(self.members) >= self.limits[1]

    def score(self, advance: ProgressHook | None) -> None:
        """Score every member (filling its TensorScore), then empty the group."""
        members, self.members, self.weights = self.members, [], 0
        if members:
            _score_tensors(members, self.options)
        if advance is not None:
            for entry, _, _ in members:
                advance(entry)


def _score_tensors(
    members: list[tuple[TensorEntry, torch.Tensor, TensorScore]], options: ScoreOptions
) -> None:
    try:
        values = measure_many([w for _, w, _ in members], options)
    except ValueError as err:
        if len(members) > 1:  # one by one, to find the tensor the ops refused
            for member in members:
                _score_tensors([member], options)
            return
        entry, w, result = members[0]
        # The ops refuse NaN/Inf on their own pass over the weights; only then are they counted,
        # so a finite tensor is not read once more just to check it.
        bad = nonfinite_count(w)
        if not bad:
            wide = widened(w, options.clip)
            if wide is None:
                raise ReportError(f"{entry.label}: {BATCH_INDEX.sub('', str(err))}") from None
            result.note = FLOAT64_GRID
            _score_tensors([(entry, wide, result)], options)
            return
        if options.nonfinite != "skip":
            raise ReportError(
                f"{entry.label} has {bad} NaN/Inf value(s) of {w.numel()}; "
                "skip such tensors with --nonfinite skip (nonfinite='skip')"
            ) from None
        result.skipped = f"non-finite values ({bad} NaN/Inf)"
        return
    for (_, w, result), measured in zip(members, values, strict=True):
        result.values = measured.values
        result.expected = measured.expected
        result.note = result.note or tiny_span_note(w, measured.values[BDM], options.clip)
    if not options.runs:
        return
    # One baseline run of every member at a time: memory for one copy of the group.
    runs = zip(*(baseline_tensors(entry, w, options) for entry, w, _ in members), strict=True)
    for baselines in runs:
        # "reinit" and "reference" tensors come in the checkpoint's shape; a shuffled one is arranged already
        arranged = [arrange(b, options.layout) for b in baselines]
        for (_, _, result), v in zip(members, measure_many(arranged, options), strict=True):
            result.baseline_runs.append(v.values)


def _why_none(source: TensorSource, report: Report | None = None) -> str:
    """Counts of skip reasons, e.g. "62 1-D, 1 not floating point, 3 excluded by name"."""
    if report is not None:
        counts = report.skipped_by_reason()
    else:
        counts = dict(Counter(reason_kind(_metadata_skip(e)) for e in source.entries))
    parts = [f"{n} {kind}" for kind, n in counts.items()]
    if source.excluded:
        parts.append(f"{source.excluded} excluded by name")
    return ", ".join(parts) if parts else "it holds no tensors"
