"""The scored tensors' lines of a JSON report, written from the arrays of ``tensor_records`` when
every one has the closed-form baseline and nothing but QuBD is measured (the default): each line
is the text json's encoder writes for the tensor's entry (tests/test_report_json.py checks them
against it).

The encoder writes each float with ``repr`` (CPython's dtoa, ~0.35 µs), and an entry of 8 planes
holds 45 of them: 1.6 s for 100,000 small tensors. ``qubd._C.repr_rows`` writes the same text
~7x faster (std::to_chars); without the native extension, ``repr`` writes it here.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as json_string  # the encoder's own, for ensure_ascii

import numpy as np

from qubd.report.measure import single_value_measures
from qubd.report.options import ScoreOptions
from qubd.report.scores import TensorScore
from qubd.report.tensor_records import ClosedFormFields, closed_form_fields

try:
    from qubd._C import repr_rows as _native_repr_rows
except ImportError:  # qubd without its native extension
    _native_repr_rows = None


def scored_tensor_lines(scored: list[TensorScore], options: ScoreOptions) -> list[str] | None:
    """The JSON entries of ``scored`` (none skipped), one line each; None where the fast path does
    not apply (another measure, a sampled baseline, a non-finite number: json's encoder then writes
    them, or refuses them)."""
    if single_value_measures(options) or options.compressors:
        return None
    f = closed_form_fields(scored, options.advice_margin)
    if f is None or not _finite(f):
        return None
    numbers = np.hstack(
        [
            f.values,
            f.means,
            f.std,
            np.where(f.has_ratio, f.ratio, np.nan),  # NaN: written as null
            np.where(f.has_z, f.z, np.nan),
            np.stack(
                [
                    f.total,
                    f.total_mean,
                    f.total_std,
                    np.where(f.total_has_ratio, f.total_ratio, np.nan),
                    np.where(f.total_has_z, f.total_z, np.nan),
                ],
                axis=1,
            ),
        ]
    )
    between = [", "] * (f.values.shape[1] - 1)
    pieces = ['"planes": [', *between, '], "baseline_planes": [', *between, '], "baseline_planes_std": [']
    pieces += [*between, '], "ratios": [', *between, '], "z": [', *between]
    pieces += ['], "baseline_runs": [], "total": {"bdm": ', ', "baseline": ', ', "baseline_std": ']
    pieces += [', "ratio": ', ', "z": ', "}"]
    shapes: dict[tuple[int, ...], str] = {}
    lines = []
    for t, fields, below in zip(scored, repr_rows(numbers, pieces), f.below, strict=True):
        shape = shapes.get(t.shape) or shapes.setdefault(t.shape, "[" + ", ".join(map(str, t.shape)) + "]")
        note = "null" if t.note is None else json_string(t.note)
        bits = f.suggested_bits(below)
        bits = "null" if bits is None else bits
        lines.append(
            f'{{"name": {json_string(t.name)}, "shape": {shape}, "dtype": {json_string(t.dtype)}, '
            f'"skipped": null, "note": {note}, {fields}, "suggested_bits": {bits}, '
            f'"planes_below_baseline": [{", ".join(map(str, below))}]}}'
        )
    return lines


def repr_rows(x: np.ndarray, pieces: list[str] | None = None) -> list[str]:
    """Each row of ``x`` (one value a row for a vector) as text: ``pieces[0]``, its first number,
    ``pieces[1]``, ..., its last number, ``pieces[-1]`` (ASCII; default: the numbers joined by
    ", "); each number as ``repr`` writes it, NaN as null. ValueError at an infinity."""
    x = np.ascontiguousarray(x.reshape(-1, 1) if x.ndim == 1 else x, dtype=np.float64)
    rows, cols = x.shape
    if pieces is None:
        pieces = ["", *[", "] * (cols - 1), ""] if cols else [""]
    if len(pieces) != cols + 1:
        raise ValueError(f"{cols} numbers a row need {cols + 1} pieces, got {len(pieces)}")
    if _native_repr_rows is not None:
        return _native_repr_rows(x.ctypes.data, rows, cols, pieces)
    if np.isinf(x).any():
        raise ValueError("an infinite value has no JSON number")
    if not all(piece.isascii() for piece in pieces):
        raise ValueError("the pieces must be ASCII")
    out = []
    for row in x.tolist():
        parts = [pieces[0]]
        for value, piece in zip(row, pieces[1:], strict=True):
            parts += ["null" if value != value else repr(value), piece]
        out.append("".join(parts))
    return out


def _finite(f: ClosedFormFields) -> bool:
    """Every number the entries hold is finite (ratio and z where they are defined)."""
    everywhere = (f.values, f.means, f.std, f.total, f.total_mean, f.total_std)
    where_defined = (
        (f.ratio, f.has_ratio),
        (f.z, f.has_z),
        (f.total_ratio, f.total_has_ratio),
        (f.total_z, f.total_has_z),
    )
    return all(np.isfinite(a).all() for a in everywhere) and all(
        np.isfinite(a[defined]).all() for a, defined in where_defined
    )
