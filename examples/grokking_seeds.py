"""Grokking over seeds: per-plane QuBD ratios by phase, mean and spread (the authors average 3 runs).

Reads the runs that ``grokking.py --width W --seed S --name grokking_dW_seedS`` wrote into OUT (with
``--smoke``, makes tiny ones first). Each evaluation is put in a phase by its accuracies alone:
memorised (train >= 99%, validation < 10%), generalising (train >= 99%, validation 10-99%) and
generalised (validation >= 99%). Per run and phase, the mean ratio of each plane and of all planes,
for both baselines (sampled shuffle and closed form); then mean and std over seeds, and the fall
(memorised - generalised) per seed with its mean and std.

    python examples/grokking_seeds.py --out docs/results --width 64
    python examples/grokking_seeds.py --smoke --out /tmp/grok

Writes ``OUT/NAME.json`` and ``OUT/NAME.png`` (``--name``, default ``grokking_seeds``; mean ± std band
over seeds, log step axis, as the authors plot it).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import grokking
from _common import new_figure, no_structure_line, parse_args, save_figure, write_results

PHASES = ("memorised", "generalising", "generalised")
BASELINES = {
    "shuffle": ("qubd_ratio", "qubd_plane_ratios"),
    "expected": ("expected_ratio", "expected_plane_ratios"),
}


def phase_of(train_acc: float, val_acc: float) -> str | None:
    if val_acc >= 0.99:
        return "generalised"
    if train_acc >= 0.99:
        return "memorised" if val_acc < 0.1 else "generalising"
    return None


def phase_means(run: dict, total_key: str, planes_key: str) -> dict[str, dict | None]:
    """Per phase, the mean total ratio and mean ratio per plane over the run's evaluations in it."""
    phases = [phase_of(t, v) for t, v in zip(run["train_acc"], run["val_acc"], strict=True)]
    out: dict[str, dict | None] = {}
    for phase in PHASES:
        chosen = [i for i, p in enumerate(phases) if p == phase]
        if not chosen:
            out[phase] = None
            continue
        planes = list(zip(*(run[planes_key][i] for i in chosen), strict=True))
        out[phase] = {
            "evaluations": len(chosen),
            "first_step": run["steps"][chosen[0]],
            "total": statistics.fmean(run[total_key][i] for i in chosen),
            "planes": [statistics.fmean(p) for p in planes],
        }
    return out


def mean_std(values: list[float]) -> dict[str, float | int]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "runs": len(values),
    }


def across_seeds(per_run: list[dict[str, dict | None]], bits: int) -> dict:
    """Mean ± std over runs per phase (total and each plane), and of the fall memorised - generalised."""
    out: dict = {}
    for phase in PHASES:
        present = [r[phase] for r in per_run if r[phase] is not None]
        out[phase] = (
            {
                "total": mean_std([p["total"] for p in present]),
                "planes": [mean_std([p["planes"][i] for p in present]) for i in range(bits)],
            }
            if present
            else None
        )
    both = [r for r in per_run if r["memorised"] is not None and r["generalised"] is not None]
    out["fall_memorised_to_generalised"] = (
        {
            "total": mean_std([r["memorised"]["total"] - r["generalised"]["total"] for r in both]),
            "planes": [
                mean_std([r["memorised"]["planes"][i] - r["generalised"]["planes"][i] for r in both])
                for i in range(bits)
            ],
        }
        if both
        else None
    )
    return out


def last_evaluation(runs: list[dict], total_key: str, planes_key: str, bits: int) -> dict:
    """The ratio at each run's last evaluation (total and per plane), mean ± std over runs."""
    return {
        "steps": [r["steps"][-1] for r in runs],
        "total": mean_std([r[total_key][-1] for r in runs]),
        "planes": [mean_std([r[planes_key][-1][i] for r in runs]) for i in range(bits)],
    }


def plot(runs: list[dict], path: Path) -> None:
    import numpy as np

    config = runs[0]["config"]
    shared = min(len(r["steps"]) for r in runs)  # a run stopped early: the steps every run reached
    steps = np.array(runs[0]["steps"][1:shared])  # log axis: step 0 left out
    fig = new_figure(8.0, 8.0)
    acc_ax, ratio_ax, msb_ax = fig.subplots(3, 1, sharex=True)

    def band(ax, key, label, color, index=None):
        values = np.array([[v if index is None else v[index] for v in r[key][1:shared]] for r in runs])
        mean, std = values.mean(axis=0), values.std(axis=0)
        ax.plot(steps, mean, color=color, label=label)
        ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.25)

    band(acc_ax, "train_acc", "train", "tab:blue")
    band(acc_ax, "val_acc", "validation", "tab:orange")
    acc_ax.set_ylabel("accuracy")
    band(ratio_ax, "qubd_ratio", "vs sampled shuffle", "tab:green")
    band(ratio_ax, "expected_ratio", "vs closed-form expected", "black")
    ratio_ax.set_ylabel("QuBD ratio, all planes (%)")
    band(msb_ax, "qubd_plane_ratios", "vs sampled shuffle", "tab:green", index=-1)
    band(msb_ax, "expected_plane_ratios", "vs closed-form expected", "black", index=-1)
    msb_ax.set_ylabel("MSB plane ratio (%)")
    msb_ax.set_xscale("log")
    msb_ax.set_xlabel("training step (full batch; log)")
    for ax in (acc_ax, ratio_ax, msb_ax):
        ax.legend(fontsize=8)
    no_structure_line((ratio_ax, msb_ax), 100.0)
    acc_ax.set_title(
        f"(a + b) mod {config['modulus']}, d = {config['embed_dim']}, {len(runs)} seeds: mean ± std "
        f"({config['bits']} bits, clip {config['clip']:g})",
        fontsize=10,
    )
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv, _add_arguments)
    started = time.perf_counter()
    names = [f"grokking_d{args.width}_seed{s}" for s in args.seeds]
    if args.smoke:
        for seed, name in zip(args.seeds, names, strict=True):
            grokking.main(["--smoke", "--out", str(args.out), "--device", args.device, "--seed", str(seed)] +
                          ["--width", str(args.width), "--name", name])  # fmt: skip
    runs = [json.loads((args.out / f"{name}.json").read_text(encoding="utf-8")) for name in names]
    bits = runs[0]["config"]["bits"]
    result: dict = {
        "experiment": "grokking_seeds",
        "smoke": args.smoke,
        "width": args.width,
        "seeds": list(args.seeds),
        "complete": all(r["complete"] for r in runs),
        "config": runs[0]["config"],
        "runs": {
            name: {"summary": r["summary"], "seconds": r["environment"]["seconds"]}
            for name, r in zip(names, runs, strict=True)
        },
    }
    for baseline, (total_key, planes_key) in BASELINES.items():
        per_run = [phase_means(r, total_key, planes_key) for r in runs]
        result[baseline] = {
            "per_run": per_run,
            "over_seeds": across_seeds(per_run, bits),
            "last_evaluation": last_evaluation(runs, total_key, planes_key, bits),
        }
    return write_results(args.out, args.name, result, args.device, started, partial(plot, runs))


def _add_arguments(parser) -> None:
    parser.add_argument("--width", type=int, default=64, help="the width of the runs to read")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="the seeds of the runs to read"
    )
    parser.add_argument(
        "--name", default="grokking_seeds", help="file name of the results, without extension"
    )


if __name__ == "__main__":
    main()
