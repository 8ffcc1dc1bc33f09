"""What a score computes: bit depth, range, baseline, extra measures, device."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from qubd.layouts import DEFAULT, LAYOUTS
from qubd.ops import validation
from qubd.report.errors import ReportError

EXPECTED = "expected"
SHUFFLE = "shuffle"
REINIT = "reinit"
NONE = "none"
REFERENCE = "reference"
BASELINES = (EXPECTED, SHUFFLE, NONE, REINIT, REFERENCE)
# Baselines measured on baseline tensors (``repeats`` runs; one for "reference"); "expected" is a
# closed form.
SAMPLED_BASELINES = (SHUFFLE, REINIT, REFERENCE)
BASELINE_ALIASES = {"random-reinit": REINIT}
COMPRESSORS = ("gzip", "lzma")
NONFINITE_POLICIES = ("error", "skip")
DEVICES = ("auto", "cpu", "cuda")
# A plane counts as below its baseline when at least this many percentage points below (advice rule).
DEFAULT_ADVICE_MARGIN = 1.0


@dataclass(frozen=True)
class ScoreOptions:
    """``bits`` planes of codes over [lo, hi] from min/max (``clip=None``) or the ``clip`` percentile.

    ``baseline``: "expected" (the mean and std of each plane's QuBD over random arrangements of the
    tensor's values, in closed form: docs/baselines.md), "shuffle" (each tensor's values randomly
    permuted, ``repeats`` times, seeded by ``seed``), "reinit" (a module's random re-initialisation),
    "reference" (the tensor of the same name in a reference checkpoint, ``qubd.report.reference``)
    or "none". ``binary`` adds
    BDM(W > 0); ``compressors`` adds gzip/lzma sizes of the packed bit-planes. ``nonfinite``:
    "error" (default) or "skip" for tensors holding NaN/Inf. ``layout``: the 2-D view a conv
    kernel is scored as (``qubd.layouts``; "default" is ``flatten(1)``). ``manifold`` adds the BDM
    of each tensor's tiled manifold (``qubd.report.manifold``; no closed-form baseline).
    """

    bits: int = 8
    clip: float | None = 99.9
    baseline: str = EXPECTED
    seed: int = 0
    repeats: int = 1
    binary: bool = False
    compressors: tuple[str, ...] = ()
    nonfinite: str = "error"
    device: str = "auto"
    advice_margin: float = DEFAULT_ADVICE_MARGIN
    layout: str = DEFAULT
    manifold: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "baseline", BASELINE_ALIASES.get(self.baseline, self.baseline))
        object.__setattr__(self, "compressors", tuple(self.compressors))
        try:
            validation.check_bits(self.bits)
            validation.check_clip(self.clip)
        except ValueError as err:
            raise ReportError(str(err)) from None
        _check_choice("baseline", self.baseline, (*BASELINES, *BASELINE_ALIASES))
        _check_choice("nonfinite", self.nonfinite, NONFINITE_POLICIES)
        _check_choice("device", self.device, DEVICES)
        _check_choice("layout", self.layout, tuple(LAYOUTS))
        for name in self.compressors:
            _check_choice("compressor", name, COMPRESSORS)
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or self.repeats < 1:
            raise ReportError(f"repeats must be a positive integer, got {self.repeats!r}")
        if self.repeats > 1 and self.baseline == EXPECTED:
            raise ReportError(
                f"repeats={self.repeats} has no effect on the 'expected' baseline (a closed form, "
                "no sampled runs); use baseline 'shuffle' for sampled runs"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ReportError(f"seed must be an integer, got {self.seed!r}")
        if not self.advice_margin >= 0:
            raise ReportError(f"advice margin must be >= 0 percentage points, got {self.advice_margin!r}")

    @classmethod
    def of(cls, options: ScoreOptions | None = None, **keywords: Any) -> ScoreOptions:
        """``options`` (None: the defaults) with the fields named in ``keywords`` replaced."""
        return replace(options or cls(), **keywords)

    @property
    def runs(self) -> int:
        """Sampled baseline tensors per tensor: ``repeats`` for "shuffle" and "reinit", else 0."""
        return self.repeats if self.baseline in SAMPLED_BASELINES else 0

    @property
    def layout_note(self) -> str:
        """ ", layout NAME" for a layout other than the default (for titles), else ""."""
        return "" if self.layout == DEFAULT else f", layout {self.layout}"

    @property
    def has_baseline(self) -> bool:
        return self.baseline != NONE

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ReportError("device 'cuda' was asked for, but CUDA is not available")
        return torch.device(self.device)


def _check_choice(what: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ReportError(f"{what} must be one of {', '.join(choices)}; got {value!r}")
