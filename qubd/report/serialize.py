"""The two JSON formats and their schema: reports (everything, round-trips through ``report_from_dict``)
and training logs (a header, then one entry per step: ``ComplexityTracker``, ``qubd series``); and
reports as CSV (QuBD per tensor and plane)."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import qubd
from qubd.checkpoints.collector import collector_paused
from qubd.layouts import DEFAULT
from qubd.report.advice import rule
from qubd.report.baselines import ExpectedBaseline
from qubd.report.errors import ReportError
from qubd.report.measure import BDM, BINARY, MANIFOLD, measure_names, single_value_measures
from qubd.report.options import COMPRESSORS, EXPECTED, ScoreOptions
from qubd.report.safe_text import spreadsheet_text
from qubd.report.scores import ModelSums, PlaneScore, ReportData, TensorScore, model_sums, plane_scores
from qubd.report.tensor_json import scored_tensor_lines
from qubd.report.tensor_records import bdm_fields, vector_fields
from qubd.report.writers import write_text

FORMAT = "qubd-report"
FORMAT_VERSION = 1
TRACKER_FORMAT = "qubd-training-log"
CSV_COLUMNS = ("name", "shape", "dtype", "plane", "bdm", "baseline", "baseline_std", "ratio", "z", "skipped")
ALL_TENSORS = "(all scored tensors)"
LINES_PER_PART = 1024  # tensors per part of report_json_parts
# The ScoreOptions fields a report writes under their own names (the others: "binary", the
# compressors and "manifold" as "measures", "advice_margin" as the advice's "margin", "device" as
# the one used); a training log's header writes the first five. "layout" came later: a report
# without it was scored with the default layout.
WRITTEN_OPTIONS = ("bits", "clip", "baseline", "seed", "repeats", "nonfinite")
LOGGED_OPTIONS = WRITTEN_OPTIONS[:5]


def report_to_json(report: ReportData) -> str:
    """The report indented, except its tensors: one line each, written by json's C encoder (an
    indented dump goes through the pure-Python one, ~0.6 ms a tensor: a minute for 100,000)."""
    return "".join(report_json_parts(report))


def report_json_parts(report: ReportData, sums: ModelSums | None = None) -> list[str]:
    """``report_to_json``'s text in parts, in order: a file written part by part is not first built
    as one string and copied (100,000 small tensors: 120 MB, ~3 µs a tensor). ``sums``: the
    report's ``model_sums`` where the caller has them."""
    with collector_paused():
        data = _report_head(report, sums or model_sums(report))
        tensors = _tensor_lines(report)
    head = json.dumps(data, indent=1, allow_nan=False)
    start = f'{head.removesuffix("}").rstrip()},\n "tensors": '
    if not tensors:
        return [start, "[]\n}\n"]
    parts = [start + "[\n  "]
    for i in range(0, len(tensors), LINES_PER_PART):
        parts += [",\n  ".join(tensors[i : i + LINES_PER_PART]), ",\n  "]
    parts[-1] = "\n ]\n}\n"
    return parts


def _tensor_lines(report: ReportData) -> list[str]:
    """Each tensor's entry as one line of JSON; the scored ones written from arrays where they can be
    (``qubd.report.tensor_json``), else by json's encoder."""
    encode = json.JSONEncoder(allow_nan=False).encode  # one encoder for all (dumps makes one a call)
    options = report.options
    scored = scored_tensor_lines(report.scored, options)
    if scored is None:
        return [encode(t) for t in tensor_dicts(report.tensors, options)]
    lines = iter(scored)
    return [next(lines) if t.skipped is None else encode(tensor_to_dict(t, options)) for t in report.tensors]


def report_to_dict(report: ReportData) -> dict:
    data = _report_head(report, model_sums(report))
    data["tensors"] = tensor_dicts(report.tensors, report.options)
    return data


def _report_head(report: ReportData, sums: ModelSums) -> dict:
    """Everything of ``report_to_dict`` but the tensors."""
    options = report.options
    advice = sums.advice
    weights = report.weights
    data = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "qubd_version": qubd.__version__,
        "source": report.source,
        **{name: getattr(options, name) for name in WRITTEN_OPTIONS},
        "layout": options.layout,
        "reference": report.reference,
        "measures": list(measure_names(options)),
        "device": report.device,
        "planes": [
            {**plane_dict(p), "below_baseline": bool(advice and p.plane in advice.planes_below)}
            for p in sums.planes
        ],
        "total": plane_dict(sums.total, plane=False),
        "advice": None
        if advice is None
        else {
            "rule": rule(options.advice_margin),
            "margin": options.advice_margin,
            "suggested_bits": advice.suggested_bits,
            "planes_below_baseline": advice.planes_below,
        },
        "counts": {
            "tensors": len(report.tensors),
            "scored": len(report.scored),
            "skipped": len(report.skipped),
            "excluded": report.excluded,
            "skipped_by_reason": report.skipped_by_reason(),
            "weights": weights,
        },
        "seconds": report.seconds,
        "weights_per_second": weights / report.seconds if report.seconds else None,
    }
    for measure in single_value_measures(options):
        data[measure] = plane_dict(plane_scores(report.summary(measure), total=True)[0], plane=False)
    for compressor in options.compressors:
        data[compressor] = {
            "planes": [plane_dict(p, key="bytes") for p in plane_scores(report.summary(compressor))],
            "total": plane_dict(
                plane_scores(report.total_summary(compressor), total=True)[0], plane=False, key="bytes"
            ),
        }
    return data


def plane_dict(p: PlaneScore, plane: bool = True, key: str = BDM) -> dict:
    """One plane's (or, with ``plane=False``, the total's) score, baseline, std and ratio, as JSON
    reports and training logs write it."""
    out = {"plane": p.plane} if plane else {}
    out.update(
        {key: p.bdm, "baseline": p.baseline, "baseline_std": p.baseline_std, "ratio": p.ratio, "z": p.z}
    )
    return out


def tensor_to_dict(t: TensorScore, options: ScoreOptions) -> dict:
    """One tensor's entry of a JSON report (everything ``tensor_from_dict`` needs to rebuild it)."""
    return tensor_dicts([t], options)[0]


def tensor_dicts(tensors: list[TensorScore], options: ScoreOptions) -> list[dict]:
    """``tensor_to_dict`` of each tensor; their QuBD fields computed for all of them at once
    (``qubd.report.tensor_records``)."""
    scored = iter(bdm_fields([t for t in tensors if t.skipped is None], options.advice_margin))
    measures = single_value_measures(options)
    out = []
    for t in tensors:
        data = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "skipped": t.skipped}
        if t.skipped is not None:
            out.append(data | {"planes": None, "baseline_planes": None})
            continue
        data["note"] = t.note
        data |= next(scored)
        for measure in measures:
            value = plane_dict(plane_scores(t.summary(measure), total=True)[0], plane=False)
            data[measure] = value | {"baseline_runs": [run[measure][0] for run in t.baseline_runs]}
        for compressor in options.compressors:
            data[compressor] = vector_fields(
                t.summary(compressor), [run[compressor] for run in t.baseline_runs], "planes"
            )
        out.append(data)
    return out


def read_json(path: str | Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(f"{path}: not a JSON file ({err})") from None


def report_from_dict(data: dict) -> ReportData:
    """The ReportData a ``report_to_dict`` wrote; summaries are recomputed from the tensors."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReportError('not a qubd report (no "format": "qubd-report" field)')
    try:
        measures = data["measures"]
        options = ScoreOptions(
            **{name: data[name] for name in WRITTEN_OPTIONS},
            binary=BINARY in measures,
            compressors=tuple(m for m in measures if m in COMPRESSORS),
            advice_margin=(data.get("advice") or {}).get("margin", ScoreOptions.advice_margin),
            layout=data.get("layout", DEFAULT),
            manifold=MANIFOLD in measures,
        )
        tensors = [tensor_from_dict(t, options) for t in data["tensors"]]
        if not any(t.skipped is None for t in tensors):
            raise ReportError("malformed qubd report (no scored tensors: nothing to show)")
        return ReportData(
            source=data["source"],
            options=options,
            tensors=tensors,
            device=data["device"],
            excluded=data["counts"]["excluded"],
            seconds=data.get("seconds"),
            reference=data.get("reference"),
        )
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ReportError(f"malformed qubd report ({type(err).__name__}: {err})") from None


def tensor_from_dict(t: dict, options: ScoreOptions) -> TensorScore:
    """The TensorScore a ``tensor_to_dict`` wrote with the same ``options``."""
    score = TensorScore(t["name"], tuple(t["shape"]), t["dtype"], t["skipped"])
    if score.skipped is not None:
        return score
    score.note = t.get("note")
    score.values[BDM] = list(t["planes"])
    runs = [{BDM: list(run)} for run in t["baseline_runs"]]
    for measure in single_value_measures(options):
        score.values[measure] = [t[measure][BDM]]
        for run, value in zip(runs, t[measure]["baseline_runs"], strict=True):
            run[measure] = [value]
    for compressor in options.compressors:
        score.values[compressor] = list(t[compressor]["planes"])
        for run, values in zip(runs, t[compressor]["baseline_runs"], strict=True):
            run[compressor] = list(values)
    score.baseline_runs = runs
    if options.baseline == EXPECTED:
        score.expected[BDM] = ExpectedBaseline(list(t["baseline_planes"]), list(t["baseline_planes_std"]))
        if options.binary:
            score.expected[BINARY] = ExpectedBaseline([t[BINARY]["baseline"]], [t[BINARY]["baseline_std"]])
    return score


def report_to_csv(report: ReportData) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in report.tensors:
        shape = "x".join(str(s) for s in t.shape)
        name, dtype = spreadsheet_text(t.name), spreadsheet_text(t.dtype)
        if t.skipped is not None:
            writer.writerow([name, shape, dtype, "", "", "", "", "", "", spreadsheet_text(t.skipped)])
            continue
        for p in plane_scores(t.summary()) + plane_scores(t.total(), total=True):
            writer.writerow([name, shape, dtype, *_csv_values(p), ""])
    for p in report.planes + [report.total]:
        writer.writerow([ALL_TENSORS, "", "", *_csv_values(p), ""])
    return out.getvalue()


def _csv_values(p: PlaneScore) -> list:
    plane = "total" if p.plane is None else p.plane
    return [plane] + ["" if v is None else v for v in (p.bdm, p.baseline, p.baseline_std, p.ratio, p.z)]


def write_log(path: str | Path, log: dict) -> None:
    """Write a training log, atomically."""
    write_text(path, json.dumps(log, indent=1, allow_nan=False) + "\n")


def log_header(model: str, options: ScoreOptions) -> dict:
    """The fields of a training log before its entries (``qubd series`` writes the same format)."""
    if options.layout != DEFAULT or options.manifold:
        raise ReportError(
            "a training log records the default layout and no manifold; score one checkpoint with "
            "qubd.score (qubd score) for another layout or the tiled manifold"
        )
    return {"format": TRACKER_FORMAT, "model": model} | {
        name: getattr(options, name) for name in LOGGED_OPTIONS
    }


def log_entry(report: ReportData, step: int) -> dict:
    """One entry of a training log: ``report``'s per-plane and total scores at ``step``."""
    advice = report.advice
    return {
        "step": step,
        "time": time.time(),
        "planes": [plane_dict(p) for p in report.planes],
        "total": plane_dict(report.total, plane=False),
        "suggested_bits": advice.suggested_bits if advice else None,
        "weights": report.weights,
        "tensors": {t.name: t.planes for t in report.scored},
    }
