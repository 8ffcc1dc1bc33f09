"""A ReportData at a glance: a short ``repr`` (model, settings, totals, advice) and, in notebooks, an
HTML table of QuBD per plane against the baseline. The settings in the words of the table and figure
titles (``ReportData.settings_line``)."""

from __future__ import annotations

from html import escape

from qubd.report.scores import ReportData


def totals(report: ReportData) -> str:
    total = report.total
    counts = f"{len(report.scored)} tensors scored, {len(report.skipped)} skipped, {report.weights:,} weights"
    ratio = "" if total.ratio is None else f" = {total.ratio:.1f}% of baseline"
    return f"{counts}; QuBD {total.bdm:,.1f} bits{ratio}"


def advice_line(report: ReportData) -> str:
    advice = report.advice
    if advice is None:
        return "no baseline, no advice"
    if advice.suggested_bits is None:
        return "no plane below baseline"
    return f"suggested bits {advice.suggested_bits} (planes below baseline: {advice.planes_below})"


def report_repr(report: ReportData) -> str:
    settings = report.settings_line()
    return f"<qubd.ReportData {report.source!r}: {settings}; {totals(report)}; {advice_line(report)}>"


def _cell(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def report_html(report: ReportData) -> str:
    advice = report.advice
    below = set(advice.planes_below) if advice else set()
    head = "".join(f"<th>{h}</th>" for h in ("plane", "QuBD (bits)", "baseline", "± std", "ratio %"))
    rows = []
    for p in [*report.planes, report.total]:
        label = "total" if p.plane is None else str(p.plane)
        mark = ' style="font-weight:bold"' if p.plane in below else ""
        cells = [
            label,
            _cell(p.bdm, ",.1f"),
            _cell(p.baseline, ",.1f"),
            _cell(p.baseline_std, ",.1f"),
            _cell(p.ratio, ".2f"),
        ]
        rows.append(f"<tr{mark}>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return (
        f"<div><p><b>QuBD of {escape(report.source)}</b>: {escape(report.settings_line())}<br>"
        f"{escape(totals(report))}<br>{escape(advice_line(report))} (bold: planes below baseline)</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
