"""The terminal view of a ReportData (rich): QuBD per plane against the baseline, counts, advice."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qubd.report.advice import BitDepthAdvice, describe, rule
from qubd.report.measure import BINARY, MANIFOLD, single_value_measures
from qubd.report.options import EXPECTED
from qubd.report.progress import human
from qubd.report.reference import UNPAIRED_REASONS
from qubd.report.safe_text import printable
from qubd.report.scores import ModelSums, PlaneScore, ReportData, TensorScore, model_sums, plane_scores

NOTED_NAMES_SHOWN = 5
UNPAIRED_SHOWN = 5
SINGLE_VALUE_LABELS = {BINARY: "Binary baseline BDM(W > 0)", MANIFOLD: "Tiled manifold BDM"}


def _shown(text: str) -> str:
    """A name as the table shows it: printable, and no rich markup."""
    return escape(printable(text))


def print_report(
    report: ReportData,
    console: Console | None = None,
    per_tensor: bool = False,
    sums: ModelSums | None = None,
) -> None:
    """The report's title, per-plane table (and with ``per_tensor`` the tensors'), counts and advice;
    ``sums``: its ``model_sums`` where the caller has them."""
    console = console or Console()
    sums = sums or model_sums(report)
    console.print(_title(report))
    if per_tensor:
        console.print(tensor_table(report))
    console.print(plane_table(report, sums))
    for line in _summary_lines(report, sums.advice) + _unpaired_lines(report):
        console.print(line, highlight=False)


def _title(report: ReportData) -> str:
    note = " (closed form: mean ± std over random arrangements)" * (report.options.baseline == EXPECTED)
    return f"[bold]QuBD of {_shown(report.source)}[/bold]: {report.settings_line(_shown, note)}"


def _plane_label(plane: int, bits: int) -> str:
    return f"{plane} (LSB)" if plane == 0 else f"{plane} (MSB)" if plane == bits - 1 else str(plane)


def _num(value: float | None, fmt: str = ",.1f") -> str:
    return "-" if value is None else format(value, fmt)


def _with_std(p: PlaneScore) -> str:
    if p.baseline_std is None:
        return _num(p.baseline)
    return f"{_num(p.baseline)} ± {_num(p.baseline_std)}"


def plane_table(report: ReportData, sums: ModelSums | None = None) -> Table:
    o = report.options
    planes, total, advice = sums or model_sums(report)
    below = set(advice.planes_below) if advice else set()
    table = Table(show_footer=False)
    table.add_column("plane", justify="right")
    table.add_column("QuBD (bits)", justify="right")
    if o.has_baseline:
        table.add_column(f"{o.baseline} baseline", justify="right")
        table.add_column("ratio %", justify="right")
        table.add_column("z", justify="right")
    compressed = {c: plane_scores(report.summary(c)) for c in o.compressors}
    compressed_baseline = o.runs > 0  # the compressors have no closed-form baseline
    for c in o.compressors:
        table.add_column(f"{c} bytes", justify="right")
        if compressed_baseline:
            table.add_column(f"{c} ratio %", justify="right")
    rows = [(p, _plane_label(p.plane, o.bits), [cp[p.plane] for cp in compressed.values()]) for p in planes]
    totals = [plane_scores(report.total_summary(c), total=True)[0] for c in o.compressors]
    rows.append((total, "total", totals))
    for p, label, compressed_cells in rows:
        ratio = _num(p.ratio, ".2f")
        if p.plane in below:
            ratio = f"[green]{ratio}[/green]"
        cells = [label, _num(p.bdm)] + ([_with_std(p), ratio, _num(p.z, "+.1f")] if o.has_baseline else [])
        for c in compressed_cells:
            cells += [_num(c.bdm, ",.0f")] + ([_num(c.ratio, ".2f")] if compressed_baseline else [])
        table.add_row(*cells, end_section=p.plane == o.bits - 1)
    return table


def tensor_table(report: ReportData) -> Table:
    """One row per scored tensor: total QuBD, ratio and z-score in total and of the most significant
    plane, and the bits its structure spans."""
    margin = report.options.advice_margin
    table = Table()
    for name, justify in (("tensor", "left"), ("shape", "left"), ("QuBD", "right")):
        table.add_column(name, justify=justify)
    if report.options.has_baseline:
        for name in ("ratio %", "z", "MSB ratio %", "MSB z", "bits"):
            table.add_column(name, justify="right")
    notes = any(t.note for t in report.scored)
    if notes:
        table.add_column("note")
    for t in report.scored:
        cells = [_shown(t.name), "x".join(map(str, t.shape)), _num(sum(t.planes))]
        if report.options.has_baseline:
            advice = t.advice(margin)
            total, msb = plane_scores(t.total(), total=True)[0], plane_scores(t.summary())[-1]
            cells += [_num(total.ratio, ".2f"), _num(total.z, "+.1f")]
            cells += [_num(msb.ratio, ".2f"), _num(msb.z, "+.1f"), _num(advice.suggested_bits, "d")]
        if notes:
            cells.append(t.note or "")
        table.add_row(*cells)
    return table


def _note_lines(report: ReportData) -> list[str]:
    """One line per kind of note, naming the first few tensors it concerns."""
    by_note: dict[str, list[str]] = {}
    for t in report.scored:
        if t.note:
            by_note.setdefault(t.note, []).append(t.name)
    lines = []
    for note, names in by_note.items():
        shown = ", ".join(f"'{_shown(n)}'" for n in names[:NOTED_NAMES_SHOWN])
        more = f" and {len(names) - NOTED_NAMES_SHOWN} more" if len(names) > NOTED_NAMES_SHOWN else ""
        lines.append(f"Note: {note}: {shown}{more}.")
    return lines


def _unpaired_lines(report: ReportData, shown: int = UNPAIRED_SHOWN) -> list[str]:
    """The tensors not paired with the reference, by name with the reason (the first ``shown``)."""
    tensors = unpaired(report.tensors)
    if not tensors:
        return []
    names = ", ".join(f"{_shown(t.name)} ({_shown(t.skipped)})" for t in tensors[:shown])
    more = f" and {len(tensors) - shown} more (the JSON report lists all)" if len(tensors) > shown else ""
    return [f"Not paired with the reference: {names}{more}."]


def duration(seconds: float) -> str:
    """0.0123 -> "12 ms", 1.234 -> "1.23 s", 75.4 -> "75.4 s": never "0.0 s" for a short run."""
    if seconds < 0.1:
        return f"{seconds * 1e3:.0f} ms" if seconds >= 0.5e-3 else "< 1 ms"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def _summary_lines(report: ReportData, advice: BitDepthAdvice | None) -> list[str]:
    lines = []
    rate = (
        f" in {duration(report.seconds)} ({human(report.weights / report.seconds)} weights/s)"
        if report.seconds
        else ""
    )
    n = len(report.scored)
    lines.append(
        f"Scored {n} tensor{'s' * (n != 1)} ({human(report.weights)} weights) on {report.device}{rate}."
    )
    skipped = report.skipped_by_reason()
    if skipped or report.excluded:
        parts = [f"{n} {kind}" for kind, n in skipped.items()]
        if report.excluded:
            parts.append(f"{report.excluded} excluded by --include/--exclude")
        lines.append(f"Not scored: {', '.join(parts)}.")
    lines += _note_lines(report)
    for measure in single_value_measures(report.options):
        b = plane_scores(report.summary(measure), total=True)[0]
        ratio = f", ratio {_num(b.ratio, '.2f')} %" if b.ratio is not None else ""
        ratio += f", z {_num(b.z, '+.1f')}" if b.z is not None else ""
        label = SINGLE_VALUE_LABELS[measure]
        lines.append(f"{label}: {_num(b.bdm)} bits (baseline {_num(b.baseline)}{ratio}).")
    if advice is not None:
        lines.append(describe(advice, report.options.bits))
        lines.append(f"[dim]Rule: {rule(report.options.advice_margin)}.[/dim]")
    return lines


def series_table(log: dict) -> Table:
    """One row per entry of a training log: step, checkpoint, total QuBD and ratios."""
    has_baseline = log["baseline"] != "none"
    table = Table(title=f"QuBD per checkpoint ({log['bits']} bits, baseline {escape(log['baseline'])})")
    for name in ("step", "checkpoint", "QuBD") + (("ratio %", "MSB ratio %") if has_baseline else ()):
        table.add_column(name, justify="left" if name == "checkpoint" else "right")
    for entry in log["entries"]:
        cells = [str(entry["step"]), escape(str(entry.get("checkpoint", "-"))), _num(entry["total"]["bdm"])]
        if has_baseline:
            cells += [_num(entry["total"]["ratio"], ".2f"), _num(entry["planes"][-1]["ratio"], ".2f")]
        table.add_row(*cells)
    return table


def unpaired(tensors: Iterable[TensorScore]) -> list[TensorScore]:
    """The tensors of a report skipped for want of a reference partner, or only in the reference."""
    return [t for t in tensors if t.skipped is not None and t.skipped.startswith(UNPAIRED_REASONS)]
