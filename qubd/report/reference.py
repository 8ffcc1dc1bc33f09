"""The ``reference`` baseline: each tensor against the tensor of the same name in another set of
weights (the initialisation at step 0, a random initialisation of the same architecture), scored with
the same options (docs/design.md 1.5).

The checkpoint's tensors are paired with the reference's by name. A tensor that would be scored but
has no usable partner (none of that name, another shape, not floating point there) is listed with the
reason and not scored; a reference tensor that would be scored but has no tensor of its name in the
checkpoint is listed as "only in the reference". Nothing in common is a ReportError. A reference
tensor is read only when its partner is scored, so both checkpoints stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace

import torch

from qubd.checkpoints import Scorable, TensorEntry, TensorSource, as_scorable, nonfinite_count, open_source
from qubd.checkpoints.eligibility import FLOAT_DTYPES
from qubd.checkpoints.source import NOT_INDEXED
from qubd.report.errors import ReportError
from qubd.report.options import REFERENCE, ScoreOptions

NOT_IN_REFERENCE = "not in the reference"
SHAPE_DIFFERS = "shape differs from the reference"
NOT_FLOATING_IN_REFERENCE = "not floating point in the reference"
ONLY_IN_REFERENCE = "only in the reference"
UNPAIRED_REASONS = (NOT_IN_REFERENCE, SHAPE_DIFFERS, NOT_FLOATING_IN_REFERENCE, ONLY_IN_REFERENCE)


def resolve_baseline(baseline: str, reference: object | None) -> str:
    """The baseline of a score: "reference" when a reference is given (``baseline`` left at its
    default, or "reference"); ReportError for "reference" without one, or another baseline with one."""
    if reference is None:
        if baseline == REFERENCE:
            raise ReportError(
                "baseline 'reference' needs a reference checkpoint (reference=..., --reference REF)"
            )
        return baseline
    if baseline not in (REFERENCE, ScoreOptions.baseline):
        raise ReportError(
            f"a reference checkpoint is the baseline; it cannot be combined with baseline {baseline!r}"
        )
    return REFERENCE


def open_reference(
    reference: Scorable | None,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> AbstractContextManager[TensorSource | None]:
    """The reference as an open TensorSource (same name filters as the checkpoint), or None."""
    if reference is None:
        return nullcontext(None)
    return open_source(reference, include, exclude)


def pair_with_reference(
    source: TensorSource,
    reference: TensorSource | None,
    options: ScoreOptions,
    eligible: Callable[[TensorEntry], bool],
) -> TensorSource:
    """``source`` with each ``eligible`` entry given its reference tensor's loader, or skipped with the
    reason it has none; the reference's eligible tensors absent from ``source`` are appended, skipped
    as "only in the reference". ``source`` as it is when the baseline is not "reference"."""
    if options.baseline != REFERENCE:
        if reference is not None:
            raise ReportError(f"a reference was given, but the baseline is {options.baseline!r}")
        return source
    if reference is None:
        raise ReportError(
            "baseline 'reference' needs a reference checkpoint (reference=..., --reference REF)"
        )
    if options.repeats != 1:
        raise ReportError(
            f"the reference baseline is one fixed set of weights: repeats must be 1, got {options.repeats}"
        )
    partners = {e.name: e for e in reference.entries if not (e.skipped or "").startswith(NOT_INDEXED)}
    entries = []
    for entry in source.entries:
        if eligible(entry):
            reason = _mismatch(entry, partners.get(entry.name))
            entry = (
                replace(entry, skipped=reason)
                if reason
                else replace(entry, reference=partners[entry.name].load)
            )
        entries.append(entry)
    names = {e.name for e in source.entries}
    only = [
        replace(e, skipped=ONLY_IN_REFERENCE, reinitialize=None)
        for e in reference.entries
        if e.name not in names and eligible(e)
    ]
    if not any(e.reference is not None for e in entries) and any(eligible(e) for e in source.entries):
        raise ReportError(_nothing_in_common(source, reference, entries, only))
    return replace(source, entries=entries + only)


def reference_tensor(entry: TensorEntry, device: torch.device) -> torch.Tensor:
    """The reference tensor of ``entry`` on ``device``, in a dtype the ops take. ReportError when it
    holds NaN/Inf (a baseline cannot be skipped once its tensor was scored: exclude the tensor)."""
    if entry.reference is None:
        raise ReportError(f"baseline 'reference': tensor '{entry.name}' has no reference tensor")
    w = as_scorable(entry.reference()).to(device)
    bad = nonfinite_count(w)
    if bad:
        raise ReportError(
            f"the reference's tensor '{entry.name}' has {bad} NaN/Inf value(s) of {w.numel()}; "
            "leave it out with --exclude"
        )
    return w


def _mismatch(entry: TensorEntry, partner: TensorEntry | None) -> str | None:
    """Why ``partner`` cannot be ``entry``'s baseline, or None when it can."""
    if partner is None:
        return NOT_IN_REFERENCE
    if partner.shape != entry.shape:
        return f"{SHAPE_DIFFERS} ({_shape(entry.shape)} here, {_shape(partner.shape)} there)"
    if partner.dtype not in FLOAT_DTYPES:
        return f"{NOT_FLOATING_IN_REFERENCE} ({partner.dtype})"
    return None


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _nothing_in_common(
    source: TensorSource, reference: TensorSource, entries: list[TensorEntry], only: list[TensorEntry]
) -> str:
    unpaired = [e for e in entries if e.skipped is not None and e.skipped.startswith(NOT_IN_REFERENCE)]
    reshaped = [e for e in entries if e.skipped is not None and e.skipped.startswith(SHAPE_DIFFERS)]
    parts = [
        f"{len(group)} {what}, e.g. '{group[0].name}'"
        for group, what in (
            (unpaired, "only in the checkpoint"),
            (only, ONLY_IN_REFERENCE),
            (reshaped, "with another shape"),
        )
        if group
    ]
    return (
        f"{source.description}: no tensor in common with the reference {reference.description} "
        f"({'; '.join(parts) or 'no scorable tensor'})"
    )
