"""Shared plumbing of the paper-reproduction examples: command line, seeding, devices, QuBD ratios read
from a ``qubd.report.Report``, and writing the JSON results and PNG figures.

The examples import it as ``_common`` (``python examples/<name>.py`` puts ``examples/`` on the path).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import qubd
from qubd.report import PlaneScore, Report
from qubd.report.errors import ReportError
from qubd.report.writers import check_output, write_file, write_text

FIGURE_DPI = 120
WRITE_CHECK_NAME = "qubd-write-check"  # never created: check_output probes the folder with a temp file


def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``--out DIR``, ``--smoke`` (a seconds-long run, as the tests run it), ``--seed``, ``--device``,
    and whatever ``add_arguments`` adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--out", type=_out_dir, default=Path("."), help="directory for the JSON and PNG results"
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny, seconds-long run (for the tests)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data split, initialisation, baselines")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to train and score"
    )
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        check_output(args.out / WRITE_CHECK_NAME)  # writable: found now, not after the run
    except (OSError, ReportError) as err:
        parser.error(f"--out {args.out}: cannot write results there ({err})")
    args.device = resolve_device(args.device)
    return args


def _out_dir(text: str) -> Path:
    if not text:
        raise argparse.ArgumentTypeError("an empty path; give a directory ('.' for this one)")
    return Path(text)


def resolve_device(name: str) -> str:
    """The device to use: "cuda" when asked for (or, with "auto", when available), else "cpu"."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but CUDA is not available")
    return name


def with_seeds_shifted(config: Any, seed: int) -> Any:
    """``config`` (a dataclass with ``seeds``) with every seed shifted by ``seed`` (--seed s: 0, 1, 2
    -> s, s + 1, s + 2)."""
    return dataclasses.replace(config, seeds=tuple(seed + s for s in config.seeds))


def seed_everything(seed: int) -> torch.Generator:
    """Seeds Python, NumPy and torch (all devices); returns a CPU generator for data handling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def plane_ratios(report: Report) -> list[float]:
    """QuBD / baseline in percent per bit-plane (plane 0 the least significant), summed over tensors."""
    return [_finite(p.ratio, f"plane {p.plane} ratio") for p in report.planes]


def total_ratio(report: Report) -> float:
    """QuBD / baseline in percent, summed over planes and tensors."""
    return _finite(report.total.ratio, "total ratio")


def total_ratio_std(report: Report) -> float | None:
    """First-order std of the total ratio from the baseline's spread over repeats (None for one run)."""
    total = report.total
    if total.baseline_std is None or not total.baseline:
        return None
    return 100.0 * total.bdm * total.baseline_std / total.baseline**2


def z_score(score: PlaneScore) -> float:
    """(QuBD - expected baseline) / its std, for a score made with the closed-form baseline."""
    return _finite(score.z, f"z-score of {'total' if score.plane is None else f'plane {score.plane}'}")


def _finite(value: float | None, what: str) -> float:
    if value is None or not math.isfinite(value):
        raise ValueError(f"{what} is not a finite number: {value!r}")
    return float(value)


def environment(device: str, started: float) -> dict[str, Any]:
    """What ran it: versions, device and wall time, recorded beside the config in each JSON."""
    return {
        "qubd": qubd.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device,
        "threads": torch.get_num_threads(),
        "seconds": round(time.perf_counter() - started, 2),
    }


def write_json(path: Path, data: dict[str, Any], quiet: bool = False) -> None:
    """Pretty JSON, refusing NaN/Inf (every value the examples write must be a finite number);
    written like every qubd output (``qubd.report.writers``: checked, atomic)."""
    write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")
    if not quiet:
        print(f"wrote {path}")


def write_results(
    out: Path, name: str, result: dict[str, Any], device: str, started: float, plot: Callable[[Path], None]
) -> dict[str, Any]:
    """``result`` with ``environment`` added, into OUT/NAME.json, then its figure (``plot(path)``) into
    OUT/NAME.png; returns ``result``."""
    result["environment"] = environment(device, started)
    write_json(out / f"{name}.json", result)
    plot(out / f"{name}.png")
    return result


def new_figure(width: float, height: float):
    """A matplotlib Figure (no pyplot: no display needed, the global backend is left alone)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig, path: Path) -> None:
    write_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=FIGURE_DPI))
    print(f"wrote {path}")


def no_structure_line(axes, y: float) -> None:
    """A dashed grey line at ``y`` on each of ``axes``: where a ratio is 100% (or a reduction 0), as for
    weights with no structure."""
    for ax in axes:
        ax.axhline(y, color="gray", linestyle="--", linewidth=1)


def plane_labels(bits: int) -> list[str]:
    """Tick labels for bit-planes: "0\\nLSB", "1", ..., "b-1\\nMSB"."""
    return [f"{p}\nLSB" if p == 0 else f"{p}\nMSB" if p == bits - 1 else str(p) for p in range(bits)]


def full_batch_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> None:
    """One optimiser step on the cross-entropy of the whole training set."""
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


@torch.no_grad()
def accuracy_and_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Accuracy (fraction in [0, 1]) and mean cross-entropy of ``model`` on (x, y), in eval mode."""
    was_training = model.training
    model.eval()
    logits = model(x)
    model.train(was_training)
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    acc = (logits.argmax(dim=-1) == y).float().mean().item()
    return acc, loss
