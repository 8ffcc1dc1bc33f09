"""Figures of reports and training logs (matplotlib, no pyplot: the caller's backend is left alone)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from qubd.report.advice import NOISE_SIGMAS
from qubd.report.errors import ReportError
from qubd.report.scores import ReportData, TensorScore, settings_text
from qubd.report.serialize import FORMAT, TRACKER_FORMAT, read_json, report_from_dict
from qubd.report.summary import Summary
from qubd.report.writers import Output, Staging, check_output, write_file

MAX_LABELLED_ROWS = 80
MAX_TENSOR_ROWS = 60  # past this many tensors, the heatmap has a row per layer instead
ROW_INCHES = 0.16
RATIO_SPAN_LIMITS = (2.0, 99.0)  # the heatmap's colour range is 100 +- a span within these
Z_SPAN_MIN = 10.0  # the z heatmap's colour range is at least +-10 std
# The ratio axes show at least 100 - RATIO_AXIS_BELOW .. 100 + RATIO_AXIS_ABOVE, so that a drop of
# a point or two reads as small.
RATIO_AXIS_BELOW = 10.0
RATIO_AXIS_ABOVE = 2.0
GENERIC_FILE_NAMES = ("model.safetensors", "pytorch_model.bin", "model.pt", "model.bin")


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
    report: ReportData, path: str | Path | Output, fmt: str | None = None, stage: Staging | None = None
) -> None:
    """Per-plane ratio bars (QuBD bars without a baseline) above a tensor x plane heatmap, into
    ``path`` as image format ``fmt`` (default: from the suffix); staged in ``stage`` when given."""
    out = check_output(path)
    fmt = fmt or plot_format(out.given)
    rows = heatmap_rows(report)
    heat_inches = max(2.5, min(ROW_INCHES * len(rows), MAX_LABELLED_ROWS * ROW_INCHES))
    fig = _figure(9.0, 4.5 + heat_inches)
    bars, heat = fig.subplots(2, 1, height_ratios=[3.0, heat_inches])
    _plane_bars(bars, report)
    _heatmap(fig, heat, report, rows)
    fig.suptitle(f"QuBD of {model_name(report.source)}\n{report.settings_line(model_name)}", fontsize=10)
    _save(fig, out, fmt, stage)


def model_name(source: str) -> str:
    """How a figure names the model: a Hugging Face cache path as "org/name", a file with a generic
    name (model.safetensors) by its last two folders, another path by its last two parts; anything
    that is not a path (a module's description) unchanged."""
    if "/" not in source and "\\" not in source:
        return source
    parts = [p for p in re.split(r"[\\/]+", source) if p]
    for part in parts:
        if part.startswith("models--"):
            return part.removeprefix("models--").replace("--", "/")
    if parts and parts[-1] in GENERIC_FILE_NAMES:
        parts = parts[:-1]
    return "/".join(parts[-2:]) if parts else source


def ratio_limits(ratios: np.ndarray, errors: np.ndarray | None = None) -> tuple[float, float]:
    """A ratio axis (percent) that shows 100 and at least 100 - RATIO_AXIS_BELOW .. 100 +
    RATIO_AXIS_ABOVE, widened to every value (with its error bar)."""
    finite = ratios[np.isfinite(ratios)]
    spread = np.zeros_like(finite) if errors is None else np.nan_to_num(errors[np.isfinite(ratios)])
    low = float(np.min(finite - spread, initial=100.0))
    high = float(np.max(finite + spread, initial=100.0))
    pad = 0.05 * (high - low)
    return min(low - pad, 100.0 - RATIO_AXIS_BELOW), max(high + pad, 100.0 + RATIO_AXIS_ABOVE)


def layer_of(name: str) -> str:
    """The layer a tensor belongs to: its name up to the first numeric part ("model.layers.3"), or
    without its last part ("embeddings.word_embeddings") when no part is a number."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return ".".join(parts[:-1]) or name


def heatmap_rows(report: ReportData) -> list[tuple[str, list[TensorScore]]]:
    """The heatmap's rows, each a label and its tensors: one per tensor, or with more than
    MAX_TENSOR_ROWS tensors, one per layer (``layer_of``), in the order layers first appear."""
    scored = report.scored
    if len(scored) <= MAX_TENSOR_ROWS:
        return [(t.name, [t]) for t in scored]
    layers: dict[str, list[TensorScore]] = {}
    for t in scored:
        layers.setdefault(layer_of(t.name), []).append(t)
    return [(f"{name} ({len(ts)})" if len(ts) > 1 else ts[0].name, ts) for name, ts in layers.items()]


def _row_summary(report: ReportData, tensors: list[TensorScore]) -> Summary:
    """Per-plane QuBD of ``tensors`` summed, against their summed baseline (closed-form variances add)."""
    return replace(report, tensors=tensors).summary()


def _plane_bars(ax, report: ReportData) -> None:
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
        ax.set_ylim(*ratio_limits(ratio, err))
        ax.set_ylabel(f"QuBD / {report.options.baseline} baseline (%)")
        advice = report.advice
        found = (
            "no structure found"
            if advice.suggested_bits is None
            else f"structure in the top {advice.suggested_bits} bit{'s' * (advice.suggested_bits != 1)}"
        )
        ax.set_title(
            f"Per-plane ratio over {len(report.scored)} tensors (bars: ±1 std of the baseline); "
            f"green: clearly below baseline; {found}",
            fontsize=9,
        )
    ax.set_xticks(
        planes, [f"{p}\nLSB" if p == 0 else f"{p}\nMSB" if p == bits - 1 else str(p) for p in planes]
    )
    ax.set_xlabel("bit-plane")


def _heatmap(fig, ax, report: ReportData, rows: list[tuple[str, list[TensorScore]]]) -> None:
    """Per row (tensor or layer) and plane: the z-score when the baseline has a std (noise stays
    pale, and cells beyond noise, |z| > NOISE_SIGMAS, carry a dot), else the ratio, else the QuBD per
    block. Colours follow a symmetric log scale, so small and large deviations are both visible."""
    from matplotlib.colors import SymLogNorm
    from matplotlib.ticker import FuncFormatter

    summaries = [_row_summary(report, ts) for _, ts in rows] if report.options.has_baseline else []
    if summaries and all(s.z is not None for s in summaries):
        z = np.array([[np.nan if v is None else v for v in s.z] for s in summaries], dtype=float)
        span = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
        span = max(span, Z_SPAN_MIN)
        norm = SymLogNorm(linthresh=NOISE_SIGMAS, linscale=0.5, vmin=-span, vmax=span, base=10)
        image = ax.imshow(z, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        ticks = [
            t for t in (-1000, -100, -10, -NOISE_SIGMAS, 0, NOISE_SIGMAS, 10, 100, 1000) if abs(t) <= span
        ]
        bar = fig.colorbar(image, ax=ax, label="z-score (symmetric log)", shrink=0.9, aspect=30, ticks=ticks)
        bar.formatter = FuncFormatter(lambda x, _: f"{x:+g}" if x else "0")
        bar.update_ticks()
        beyond_row, beyond_plane = np.nonzero(np.abs(np.nan_to_num(z)) > NOISE_SIGMAS)
        ax.scatter(beyond_plane, beyond_row, s=12, c="black", edgecolors="white", linewidths=0.5)
        what = f"z-score; dot: beyond noise (|z| > {NOISE_SIGMAS:g} std of a random arrangement)"
    elif summaries:
        deviation = np.array([s.ratio for s in summaries], dtype=float) - 100.0
        span = float(np.nanmax(np.abs(deviation))) if deviation.size else 1.0
        span = min(max(span, RATIO_SPAN_LIMITS[0]), RATIO_SPAN_LIMITS[1])
        norm = SymLogNorm(linthresh=1.0, linscale=0.5, vmin=-span, vmax=span, base=10)
        image = ax.imshow(deviation, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, label="ratio (%), symmetric log around 100", shrink=0.9, aspect=30)
        bar.formatter = FuncFormatter(lambda x, _: f"{100 + x:g}")
        bar.update_ticks()
        what = "ratio to the baseline (no std: noise not marked)"
    else:
        values = np.array([_per_block(ts) for _, ts in rows], dtype=float)
        image = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax, label="QuBD per 4x4 block (bits)", shrink=0.9, aspect=30)
        what = "QuBD per block"
    ax.set_xticks(np.arange(report.options.bits))
    ax.set_xlabel("bit-plane (0 = least significant)")
    step = max(1, int(np.ceil(len(rows) / MAX_LABELLED_ROWS)))
    shown = range(0, len(rows), step)
    ax.set_yticks(list(shown), [rows[i][0] for i in shown], fontsize=6)
    per = "tensor" if all(len(ts) == 1 for _, ts in rows) else "layer (tensors summed; count in brackets)"
    ax.set_title(f"Per {per} and plane: {what}", fontsize=9)


def _per_block(tensors: list[TensorScore]) -> list[float]:
    blocks = sum(max(1, (t.shape[0] // 4) * (t.numel // t.shape[0] // 4)) for t in tensors)
    return [sum(plane) / blocks for plane in zip(*(t.planes for t in tensors), strict=True)]


def plot_history(history: dict, path: str | Path | Output, fmt: str | None = None) -> None:
    """A ComplexityTracker log: per-plane ratio (or QuBD) and total QuBD against the training step.
    Where the baseline has a std, a filled marker is a point beyond noise (|z| > NOISE_SIGMAS)."""
    from matplotlib.ticker import FuncFormatter

    out = check_output(path)
    fmt = fmt or plot_format(out.given)
    entries = history["entries"]
    if not entries:
        raise ReportError("the training log has no entries to plot")
    steps = np.array([e["step"] for e in entries], dtype=float)
    bits = history["bits"]
    has_baseline = history["baseline"] != "none"
    key = "ratio" if has_baseline else "bdm"
    fig = _figure(9.0, 7.0)
    per_plane, total = fig.subplots(2, 1, sharex=True)
    cmap = _colormap(bits)
    ratios = []
    for plane in reversed(range(bits)):  # the legend lists the most significant plane first
        values = np.array([_number(e["planes"][plane].get(key)) for e in entries])
        ratios.append(values)
        label = f"plane {plane}" + (" (MSB)" if plane == bits - 1 else " (LSB)" if plane == 0 else "")
        per_plane.plot(steps, values, color=cmap[plane], label=label, linewidth=1.2)
        z = np.array([_number(e["planes"][plane].get("z")) for e in entries])
        beyond = np.abs(np.nan_to_num(z)) > NOISE_SIGMAS
        per_plane.scatter(steps[beyond], values[beyond], color=cmap[plane], s=14, zorder=3)
    if has_baseline:
        per_plane.axhline(100.0, color="black", linestyle="--", linewidth=1)
        per_plane.set_ylim(*ratio_limits(np.concatenate(ratios)))
        per_plane.set_ylabel(f"QuBD / {history['baseline']} baseline (%)")
        noise = any(e["planes"][0].get("z") is not None for e in entries)
        dots = f"; dot: beyond noise (|z| > {NOISE_SIGMAS:g})" if noise else ""
        per_plane.set_title(f"Per bit-plane ratio{dots}", fontsize=9)
    else:
        per_plane.set_ylabel("QuBD (bits)")
        per_plane.set_title("Per bit-plane QuBD", fontsize=9)
    per_plane.legend(fontsize=7, ncol=2 if bits > 8 else 1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    total.plot(steps, [e["total"]["bdm"] for e in entries], color="tab:blue", label="QuBD")
    if has_baseline:
        total.plot(
            steps,
            [_number(e["total"].get("baseline")) for e in entries],
            color="tab:gray",
            linestyle="--",
            label=f"{history['baseline']} baseline",
        )
    total.set_ylabel("total QuBD (bits)")
    total.yaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    total.set_xlabel("training step")
    total.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    settings = settings_text(bits, history.get("clip"), history["baseline"])
    fig.suptitle(
        f"QuBD of {model_name(str(history.get('model', 'a model')))} during training\n{settings}", fontsize=10
    )
    _save(fig, out, fmt)


def _number(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _colormap(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(1, n - 1)) for i in range(n)]


def plot_file(json_path: str | Path, image_path: str | Path | Output) -> None:
    """Plot a report or a training log read from a JSON file."""
    image_path = check_output(image_path)
    plot_format(image_path.given)

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
