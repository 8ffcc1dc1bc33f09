"""Score the checkpoints of one training run into a training log: the format ``ComplexityTracker``
writes, so ``qubd plot LOG`` draws ratio and per-plane curves against the step.

Which checkpoints: each PATH is one checkpoint (a file or a model folder), unless it is a folder holding
checkpoint folders named ``checkpoint-N`` (the Hugging Face Trainer) or ``stepN`` / ``step-N`` /
``step_N`` (e.g. Pythia's revisions): then it stands for those, in step order. A checkpoint's step is
the number its name ends in (``checkpoint-1500``, ``step1500``, ``model_1500.pt``), or is given.

The log is rewritten (atomically) after each checkpoint, and an interrupted series resumes: the
checkpoints the log holds (same step and path) are not scored again. A log written with other options
is an error, not mixed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from qubd.checkpoints import CheckpointError, NameFilter, input_files, open_source
from qubd.report.errors import ReportError
from qubd.report.options import ScoreOptions
from qubd.report.progress import count_progress
from qubd.report.reference import open_reference, resolve_baseline
from qubd.report.scoring import score_source
from qubd.report.serialize import TRACKER_FORMAT, log_entry, log_header, read_json, write_log
from qubd.report.writers import check_outputs, check_writable

CHECKPOINT_FOLDER = re.compile(r"(?:checkpoint|step)[-_]?(\d+)")
TRAILING_NUMBER = re.compile(r"(\d+)$")
FIRST = "first"  # reference="first": the first checkpoint (lowest step) is every checkpoint's baseline
# A log is resumed only when it was written with these the same.
RESUME_KEYS = ("bits", "clip", "baseline", "seed", "repeats", "reference", "include", "exclude")


@dataclass(frozen=True)
class SeriesCheckpoint:
    step: int
    path: Path

    @property
    def key(self) -> str:
        """The path as the log records it: absolute (symlinks kept), so a resume from elsewhere matches."""
        return os.path.abspath(self.path)


@dataclass
class SeriesResult:
    """The training log written, and which checkpoints were scored now or found in it already."""

    log: dict
    scored: list[SeriesCheckpoint] = field(default_factory=list)
    resumed: list[SeriesCheckpoint] = field(default_factory=list)


def series_checkpoints(
    paths: Sequence[str | os.PathLike], steps: Sequence[int] | None = None
) -> list[SeriesCheckpoint]:
    """The checkpoints of ``paths`` (checkpoint folders expanded), in step order. ``steps``: one per
    checkpoint in the order found (folders expanded in step order), instead of reading the names."""
    found: list[tuple[Path, int | None]] = []
    for path in map(Path, paths):
        if not path.exists():
            raise CheckpointError(f"{path}: no such file or directory")
        found.extend(_checkpoint_folders(path) or [(path, _step_from_name(path))])
    if steps is not None:
        if len(steps) != len(found):
            raise ReportError(f"{len(steps)} steps given for {len(found)} checkpoints ({_listing(found)})")
        found = [(path, step) for (path, _), step in zip(found, steps, strict=True)]
    for path, step in found:
        if step is None:
            raise ReportError(
                f"{path}: cannot read a step from the name (it should end in a number, e.g. checkpoint-1500 "
                "or step1500); give the steps with --steps"
            )
    series = sorted((SeriesCheckpoint(step, path) for path, step in found), key=lambda c: c.step)
    for before, after in pairwise(series):
        if before.step == after.step:
            raise ReportError(f"{before.path} and {after.path} both have step {after.step}")
    return series


def score_series(
    paths: Sequence[str | os.PathLike],
    log: str | os.PathLike,
    *,
    options: ScoreOptions | None = None,
    steps: Sequence[int] | None = None,
    reference: str | os.PathLike | None = None,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    progress: bool = False,
    **keywords: Any,
) -> SeriesResult:
    """Score each checkpoint of ``paths`` (see the module docstring) into the training log ``log``,
    resuming it when it exists. ``reference``: "first" (the first checkpoint is every checkpoint's
    baseline, itself included: 100%), a checkpoint path, or None; ``options`` (a ``ScoreOptions``) with
    the keywords of ``qubd.score`` (bits, clip, baseline, seed, repeats, nonfinite, device,
    advice_margin) replacing its fields."""
    checkpoints = series_checkpoints(paths, steps)
    read = [c.path for c in checkpoints] + ([reference] if reference not in (None, FIRST) else [])
    check_outputs([check_writable(log)], inputs=[f for path in read for f in input_files(path)])
    log = Path(log)
    names = NameFilter.of(include, exclude)
    baseline = keywords.pop("baseline", (options or ScoreOptions).baseline)
    score_options = ScoreOptions.of(options, baseline=resolve_baseline(baseline, reference), **keywords)
    if reference == FIRST:
        reference = checkpoints[0].path
    header = log_header(os.path.commonpath([c.key for c in checkpoints]), score_options) | {
        "reference": None if reference is None else os.path.abspath(reference),
        "include": list(names.include),
        "exclude": list(names.exclude),
    }
    result = SeriesResult(header | {"entries": _logged_entries(log, header)})
    entries = result.log["entries"]
    todo = []
    for checkpoint in checkpoints:
        if _already_logged(entries, checkpoint, log):
            result.resumed.append(checkpoint)
        else:
            todo.append(checkpoint)
    with count_progress(len(todo), "checkpoints", progress) as bar:
        for checkpoint in todo:
            bar.working_on(checkpoint.path.name)
            with (
                open_source(checkpoint.path, names.include, names.exclude) as source,
                open_reference(reference, names.include, names.exclude) as ref,
            ):
                report = score_source(source, score_options, reference=ref)
            entries.append(log_entry(report, checkpoint.step) | {"checkpoint": checkpoint.key})
            entries.sort(key=lambda e: e["step"])
            write_log(log, result.log)
            result.scored.append(checkpoint)
            bar.done()
    return result


def _checkpoint_folders(path: Path) -> list[tuple[Path, int]]:
    """The ``checkpoint-N`` / ``stepN`` folders directly in ``path``, in step order."""
    if not path.is_dir():
        return []
    folders = []
    for child in path.iterdir():
        match = CHECKPOINT_FOLDER.fullmatch(child.name)
        if match and child.is_dir():
            folders.append((child, int(match.group(1))))
    return sorted(folders, key=lambda folder: folder[1])


def _step_from_name(path: Path) -> int | None:
    match = TRAILING_NUMBER.search(path.name if path.is_dir() else path.stem)
    return int(match.group(1)) if match else None


def _listing(found: list[tuple[Path, int | None]]) -> str:
    shown = ", ".join(str(path) for path, _ in found[:3])
    return shown + (", ..." if len(found) > 3 else "")


def _logged_entries(log: Path, header: dict) -> list[dict]:
    """The entries of an existing log written with the same options; none when there is no log."""
    if not log.exists():
        return []
    data = read_json(log)
    if not isinstance(data, dict) or data.get("format") != TRACKER_FORMAT:
        raise ReportError(f"{log}: exists and is not a qubd training log; not overwriting it")
    for key in RESUME_KEYS:
        if data.get(key) != header[key]:
            raise ReportError(
                f"{log}: was written with {key} {data.get(key)!r}, this series has {header[key]!r}; "
                "continue it with the same options, or write another log"
            )
    entries = data.get("entries")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("step"), int) and isinstance(e.get("checkpoint"), str)
        for e in entries
    ):
        raise ReportError(f"{log}: malformed training log (entries without step and checkpoint)")
    return entries


def _already_logged(entries: list[dict], checkpoint: SeriesCheckpoint, log: Path) -> bool:
    """Whether ``log`` holds ``checkpoint``; ReportError when it holds its step or path with another."""
    for entry in entries:
        same_step, same_path = entry["step"] == checkpoint.step, entry["checkpoint"] == checkpoint.key
        if same_step and same_path:
            return True
        if same_step or same_path:
            raise ReportError(
                f"{log}: holds {entry['checkpoint']} at step {entry['step']}, but this series has "
                f"{checkpoint.key} at step {checkpoint.step}"
            )
    return False
