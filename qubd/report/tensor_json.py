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
    columns = zip(
        repr_rows(f.values),
        repr_rows(f.means),
        repr_rows(f.std),
        repr_rows(np.where(f.has_ratio, f.ratio, np.nan)),
        repr_rows(np.where(f.has_z, f.z, np.nan)),
        repr_rows(f.total),
        repr_rows(f.total_mean),
        repr_rows(f.total_std),
        repr_rows(np.where(f.total_has_ratio, f.total_ratio, np.nan)),
        repr_rows(np.where(f.total_has_z, f.total_z, np.nan)),
        f.below,
        strict=True,
    )
    shapes: dict[tuple[int, ...], str] = {}
    lines = []
    for t, (v, m, s, r, z, tv, tm, ts, tr, tz, below) in zip(scored, columns, strict=True):
        shape = shapes.get(t.shape) or shapes.setdefault(t.shape, "[" + ", ".join(map(str, t.shape)) + "]")
        note = "null" if t.note is None else json_string(t.note)
        bits = f.suggested_bits(below)
        lines.append(
            f'{{"name": {json_string(t.name)}, "shape": {shape}, "dtype": {json_string(t.dtype)}, '
            f'"skipped": null, "note": {note}, "planes": [{v}], "baseline_planes": [{m}], '
            f'"baseline_planes_std": [{s}], "ratios": [{r}], "z": [{z}], "baseline_runs": [], '
            f'"total": {{"bdm": {tv}, "baseline": {tm}, "baseline_std": {ts}, "ratio": {tr}, "z": {tz}}}, '
            f'"suggested_bits": {"null" if bits is None else bits}, '
            f'"planes_below_baseline": [{", ".join(map(str, below))}]}}'
        )
    return lines


def repr_rows(x: np.ndarray) -> list[str]:
    """Each row of ``x`` (one value a row for a vector) as its numbers joined by ", ", each as
    ``repr`` writes it, NaN as null. ValueError at an infinity."""
    x = np.ascontiguousarray(x.reshape(-1, 1) if x.ndim == 1 else x, dtype=np.float64)
    if _native_repr_rows is not None:
        return _native_repr_rows(x.ctypes.data, *x.shape)
    if np.isinf(x).any():
        raise ValueError("an infinite value has no JSON number")
    return [", ".join("null" if v != v else repr(v) for v in row) for row in x.tolist()]


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
