"""The terminal view of a Report (rich): QuBD per plane against the baseline, counts, advice."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qubd.report.advice import rule
from qubd.report.measure import BINARY
from qubd.report.progress import human
from qubd.report.reference import unpaired
from qubd.report.scores import PlaneScore, Report, plane_scores

UNPAIRED_SHOWN = 5


def print_report(report: Report, console: Console | None = None, per_tensor: bool = False) -> None:
    console = console or Console()
    console.print(_title(report))
    if per_tensor:
        console.print(tensor_table(report))
    console.print(plane_table(report))
    for line in _summary_lines(report) + _unpaired_lines(report):
        console.print(line, highlight=False)


def _title(report: Report) -> str:
    o = report.options
    span = "min/max" if o.clip is None else f"{o.clip:g}th percentile"
    baseline = o.baseline
    if report.reference is not None:
        baseline += f" {escape(report.reference)}"
    elif o.runs:
        baseline += f" (seed {o.seed}, {o.repeats} run{'s' if o.repeats > 1 else ''})"
    return f"[bold]QuBD of {escape(report.source)}[/bold]: {o.bits} bits, range {span}, baseline {baseline}"


def _plane_label(plane: int, bits: int) -> str:
    return f"{plane} (LSB)" if plane == 0 else f"{plane} (MSB)" if plane == bits - 1 else str(plane)


def _num(value: float | None, fmt: str = ",.1f") -> str:
    return "-" if value is None else format(value, fmt)


def _with_std(p: PlaneScore) -> str:
    if p.baseline_std is None:
        return _num(p.baseline)
    return f"{_num(p.baseline)} ± {_num(p.baseline_std)}"


def plane_table(report: Report) -> Table:
    o = report.options
    advice = report.advice
    below = set(advice.planes_below) if advice else set()
    table = Table(show_footer=False)
    table.add_column("plane", justify="right")
    table.add_column("QuBD (bits)", justify="right")
    if o.runs:
        table.add_column(f"{o.baseline} baseline", justify="right")
        table.add_column("ratio %", justify="right")
    compressed = {c: plane_scores(report.summary(c)) for c in o.compressors}
    for c in o.compressors:
        table.add_column(f"{c} bytes", justify="right")
        if o.runs:
            table.add_column(f"{c} ratio %", justify="right")
    rows = [
        (p, _plane_label(p.plane, o.bits), [cp[p.plane] for cp in compressed.values()]) for p in report.planes
    ]
    totals = [plane_scores(report.total_summary(c), total=True)[0] for c in o.compressors]
    rows.append((report.total, "total", totals))
    for p, label, compressed_cells in rows:
        ratio = _num(p.ratio, ".2f")
        if p.plane in below:
            ratio = f"[green]{ratio}[/green]"
        cells = [label, _num(p.bdm)] + ([_with_std(p), ratio] if o.runs else [])
        for c in compressed_cells:
            cells += [_num(c.bdm, ",.0f")] + ([_num(c.ratio, ".2f")] if o.runs else [])
        table.add_row(*cells, end_section=p.plane == o.bits - 1)
    return table


def tensor_table(report: Report) -> Table:
    """One row per scored tensor: total QuBD, ratios in total and of the most significant plane."""
    margin = report.options.advice_margin
    table = Table()
    for name, justify in (("tensor", "left"), ("shape", "left"), ("QuBD", "right")):
        table.add_column(name, justify=justify)
    if report.options.runs:
        for name in ("ratio %", "MSB ratio %", "bits"):
            table.add_column(name, justify="right")
    for t in report.scored:
        cells = [escape(t.name), "x".join(map(str, t.shape)), _num(sum(t.planes))]
        if report.options.runs:
            advice = t.advice(margin)
            msb = t.summary().ratio[-1]
            cells += [_num(t.total().ratio[0], ".2f"), _num(msb, ".2f"), _num(advice.suggested_bits, "d")]
        table.add_row(*cells)
    return table


def _unpaired_lines(report: Report, shown: int = UNPAIRED_SHOWN) -> list[str]:
    """The tensors not paired with the reference, by name with the reason (the first ``shown``)."""
    tensors = unpaired(report.tensors)
    if not tensors:
        return []
    names = ", ".join(f"{escape(t.name)} ({escape(t.skipped)})" for t in tensors[:shown])
    more = f" and {len(tensors) - shown} more (the JSON report lists all)" if len(tensors) > shown else ""
    return [f"Not paired with the reference: {names}{more}."]


def _summary_lines(report: Report) -> list[str]:
    lines = []
    rate = (
        f" in {report.seconds:.1f} s ({human(report.weights / report.seconds)} weights/s)"
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
    if report.options.binary:
        b = plane_scores(report.summary(BINARY), total=True)[0]
        ratio = f", ratio {_num(b.ratio, '.2f')} %" if b.ratio is not None else ""
        lines.append(f"Binary baseline BDM(W > 0): {_num(b.bdm)} bits (baseline {_num(b.baseline)}{ratio}).")
    advice = report.advice
    if advice is not None:
        if advice.suggested_bits is None:
            lines.append("Suggested bit depth: none (no plane is clearly below the baseline).")
        else:
            planes = ", ".join(map(str, advice.planes_below))
            lines.append(f"Suggested bit depth: {advice.suggested_bits} (planes below baseline: {planes}).")
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
