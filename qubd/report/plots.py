"""Figures of reports and training logs (matplotlib, no pyplot: the caller's backend is left alone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qubd.report.advice import NOISE_SIGMAS
from qubd.report.errors import ReportError
from qubd.report.scores import Report
from qubd.report.writers import Output, Staging, check_output, write_file

MAX_LABELLED_ROWS = 80
RATIO_SPAN_LIMITS = (2.0, 99.0)  # the heatmap's colour range is 100 +- a span within these
Z_SPAN_MIN = 10.0  # the z heatmap's colour range is at least +-10 std
BLOCK_CELLS = 16


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ReportError("plotting needs matplotlib (pip install matplotlib)") from err
    return Figure(figsize=(width, height), layout="constrained")


def plot_format(path: str | Path) -> str:
    """The image format of ``path`` from its suffix (png without one); ReportError when matplotlib
    cannot write it, or is not installed. Checked before any work is done."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError as err:
        raise ReportError("plotting needs matplotlib (pip install matplotlib)") from err
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise ReportError(
            f"{path}: cannot write a .{fmt} image; matplotlib writes {', '.join(sorted(supported))}"
        )
    return fmt


def _save(fig, path: str | Path | Output, fmt: str | None, stage: Staging | None = None) -> None:
    """Into ``path`` as ``fmt`` (default: from the suffix of ``path``), through ``qubd.report.writers``
    (checked, atomic); staged in ``stage`` when given."""
    out = check_output(path)
    fmt = fmt or plot_format(out.given)

    def produce(tmp: Path) -> None:
        fig.savefig(tmp, format=fmt, dpi=110)

    if stage is None:
        write_file(out, produce)
    else:
        stage.write(out, produce)


def plot_report(
    report: Report, path: str | Path | Output, fmt: str | None = None, stage: Staging | None = None
) -> None:
    """Per-plane ratio bars (QuBD bars without a baseline) above a tensor x plane heatmap, into
    ``path`` as image format ``fmt`` (default: from the suffix); staged in ``stage`` when given."""
    out = check_output(path)
    fmt = fmt or plot_format(out.given)
    scored = report.scored
    rows = len(scored)
    fig = _figure(9.0, 4.0 + min(0.16 * rows, 60.0))
    bars, heat = fig.subplots(2, 1, height_ratios=[3.0, max(2.5, min(0.16 * rows, 60.0))])
    _plane_bars(bars, report)
    _heatmap(fig, heat, report)
    fig.suptitle(f"QuBD of {report.source}", fontsize=10)
    _save(fig, out, fmt, stage)


def _plane_bars(ax, report: Report) -> None:
    bits = report.options.bits
    planes = np.arange(bits)
    summary = report.summary()
    if summary.baseline is None:
        ax.bar(planes, summary.values, color="tab:blue")
        ax.set_ylabel("QuBD (bits)")
        ax.set_title("QuBD per bit-plane, summed over tensors (no baseline)", fontsize=9)
    else:
        ratio = np.array(summary.ratio, dtype=float)
        err = None
        if summary.baseline_std is not None:  # the ratio's std from the baseline's, to first order
            values, base = np.array(summary.values), np.array(summary.baseline)
            err = 100.0 * values * np.array(summary.baseline_std) / np.square(base)
        below = set(report.advice.planes_below)
        colors = ["tab:green" if p in below else "tab:gray" for p in planes]
        ax.bar(planes, ratio, color=colors, yerr=err, capsize=3)
        ax.axhline(100.0, color="black", linestyle="--", linewidth=1)
        low = min(float(np.nanmin(ratio)), 100.0)
        high = max(float(np.nanmax(ratio)), 100.0)
        pad = max(0.5, 0.1 * (high - low))
        ax.set_ylim(low - pad, high + pad)
        ax.set_ylabel(f"QuBD / {report.options.baseline} baseline (%)")
        advice = report.advice
        found = (
            "no structure found"
            if advice.suggested_bits is None
            else f"structure in the top {advice.suggested_bits} bits"
        )
        ax.set_title(
            f"Per-plane ratio over {len(report.scored)} tensors; green: clearly below baseline; {found}",
            fontsize=9,
        )
    ax.set_xticks(
        planes, [f"{p}\nLSB" if p == 0 else f"{p}\nMSB" if p == bits - 1 else str(p) for p in planes]
    )
    ax.set_xlabel("bit-plane")


def _heatmap(fig, ax, report: Report) -> None:
    """Per tensor and plane: the z-score when the baseline has a std (noise stays pale), else the
    ratio, else the QuBD per block. Colours follow a symmetric log scale, so small and large
    deviations are both visible."""
    from matplotlib.colors import SymLogNorm
    from matplotlib.ticker import FuncFormatter

    scored = report.scored
    summaries = [t.summary() for t in scored] if report.options.has_baseline else []
    if summaries and all(s.z is not None for s in summaries):
        z = np.array([[np.nan if v is None else v for v in s.z] for s in summaries], dtype=float)
        span = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
        span = max(span, Z_SPAN_MIN)
        norm = SymLogNorm(linthresh=NOISE_SIGMAS, linscale=0.5, vmin=-span, vmax=span, base=10)
        image = ax.imshow(z, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        fig.colorbar(image, ax=ax, label="z-score (std from a random arrangement), symmetric log", shrink=0.8)
    elif summaries:
        deviation = np.array([s.ratio for s in summaries], dtype=float) - 100.0
        span = float(np.nanmax(np.abs(deviation))) if deviation.size else 1.0
        span = min(max(span, RATIO_SPAN_LIMITS[0]), RATIO_SPAN_LIMITS[1])
        norm = SymLogNorm(linthresh=1.0, linscale=0.5, vmin=-span, vmax=span, base=10)
        image = ax.imshow(deviation, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, label="ratio (%), symmetric log scale around 100", shrink=0.8)
        bar.formatter = FuncFormatter(lambda x, _: f"{100 + x:g}")
        bar.update_ticks()
    else:
        blocks = np.array(
            [max(1, (t.shape[0] // 4) * (t.numel // t.shape[0] // 4)) for t in scored], dtype=float
        )
        values = np.array([t.planes for t in scored], dtype=float) / blocks[:, None]
        image = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax, label="QuBD per 4x4 block (bits)", shrink=0.8)
    ax.set_xticks(np.arange(report.options.bits))
    ax.set_xlabel("bit-plane (0 = least significant)")
    step = max(1, int(np.ceil(len(scored) / MAX_LABELLED_ROWS)))
    rows = range(0, len(scored), step)
    ax.set_yticks(list(rows), [scored[i].name for i in rows], fontsize=6)
    ax.set_title("Per tensor and plane", fontsize=9)


def plot_history(history: dict, path: str | Path | Output, fmt: str | None = None) -> None:
    """A ComplexityTracker log: per-plane ratio (or QuBD) and total QuBD against the training step."""
    out = check_output(path)
    fmt = fmt or plot_format(out.given)
    entries = history["entries"]
    if not entries:
        raise ReportError("the training log has no entries to plot")
    steps = [e["step"] for e in entries]
    bits = history["bits"]
    has_baseline = history["baseline"] != "none"
    fig = _figure(9.0, 7.0)
    per_plane, total = fig.subplots(2, 1)
    cmap = _colormap(bits)
    for plane in range(bits):
        key = "ratio" if has_baseline else "bdm"
        per_plane.plot(
            steps,
            [e["planes"][plane][key] for e in entries],
            color=cmap[plane],
            label=f"plane {plane}",
            marker="." if len(steps) < 50 else None,
        )
    if has_baseline:
        per_plane.axhline(100.0, color="black", linestyle="--", linewidth=1)
    per_plane.set_ylabel(f"QuBD / {history['baseline']} baseline (%)" if has_baseline else "QuBD (bits)")
    per_plane.legend(fontsize=7, ncol=2 if bits > 8 else 1, loc="best")
    per_plane.set_title("Per bit-plane (0 = least significant)", fontsize=9)
    total.plot(steps, [e["total"]["bdm"] for e in entries], color="tab:blue", label="QuBD")
    if has_baseline:
        total.plot(
            steps,
            [e["total"]["baseline"] for e in entries],
            color="tab:gray",
            linestyle="--",
            label=f"{history['baseline']} baseline",
        )
    total.set_ylabel("total QuBD (bits)")
    total.set_xlabel("training step")
    total.legend(fontsize=7)
    fig.suptitle(f"QuBD during training ({bits} bits)", fontsize=10)
    _save(fig, out, fmt)


def _colormap(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(1, n - 1)) for i in range(n)]


def plot_file(json_path: str | Path, image_path: str | Path | Output) -> None:
    """Plot a report or a training log read from a JSON file."""
    image_path = check_output(image_path)
    plot_format(image_path.given)
    from qubd.report.serialize import FORMAT, read_json, report_from_dict
    from qubd.report.tracker import TRACKER_FORMAT

    data = read_json(json_path)
    kind = data.get("format") if isinstance(data, dict) else None
    if kind == FORMAT:
        plot_report(report_from_dict(data), image_path)
    elif kind == TRACKER_FORMAT:
        try:
            plot_history(data, image_path)
        except (KeyError, TypeError, IndexError) as err:
            raise ReportError(f"{json_path}: malformed training log ({type(err).__name__}: {err})") from None
    else:
        raise ReportError(f"{json_path}: not a qubd report or training log")
