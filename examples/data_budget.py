"""Complexity reduction versus data budget and accuracy, and under random labels (the paper's main figure).

Data: scikit-learn's bundled 8x8 digits (1,797 images, 10 classes; no download), a fixed random split
into a training pool and a test set. For each data budget n (the first n examples of the shuffled pool)
an MLP 64-256-256-10 is trained from the same seeded initialisation for a fixed number of full-batch
AdamW steps, once with the true labels and once with the n labels replaced by uniformly random ones
(the network can only memorise them). The trained weights are scored with ``qubd.report.score``:
QuBD of the three weight matrices (4 bits, clip 99.9) as a percentage of the same matrices with their
values shuffled (mean over ``baseline_repeats`` shuffles). Complexity reduction = 100 - ratio.
Everything is repeated over ``seeds`` (split, subset, initialisation, random labels and shuffles).

    python examples/data_budget.py --out docs/results          # the full run (minutes on a CPU)
    python examples/data_budget.py --smoke --out /tmp/budget    # seconds

Writes ``OUT/data_budget.json`` (every run, and per label condition the means and stds over seeds per
budget) and ``OUT/data_budget.png``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _common import (
    accuracy_and_loss,
    environment,
    full_batch_step,
    new_figure,
    parse_args,
    plane_ratios,
    save_figure,
    seed_everything,
    total_ratio,
    write_json,
)
from torch import nn

import qubd.report

CONDITIONS = ("true", "random")
DIGITS_SHAPE = (1797, 64)
CLASSES = 10


@dataclass(frozen=True)
class Config:
    budgets: tuple[int, ...] = (50, 100, 200, 400, 800, 1200)
    test_size: int = 597
    hidden: int = 256
    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 1e-2
    bits: int = 4
    clip: float = 99.9
    baseline_repeats: int = 3
    seeds: tuple[int, ...] = (0, 1, 2)


SMOKE = Config(budgets=(40, 80), hidden=32, steps=30, baseline_repeats=2, seeds=(0,))


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 digits as float features in [0, 1] (64 per image) and int64 labels.

    Read from the CSV that scikit-learn ships (what ``sklearn.datasets.load_digits`` reads), without
    importing scikit-learn's dataset module (seconds of imports); falls back to ``load_digits``.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise SystemExit("this example needs scikit-learn's bundled digits data: pip install scikit-learn")
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if csv.is_file():
        table = np.loadtxt(csv, delimiter=",")
        data, target = table[:, :-1], table[:, -1]
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        data, target = digits.data, digits.target
    if data.shape != DIGITS_SHAPE:
        raise RuntimeError(f"unexpected digits data of shape {data.shape}, expected {DIGITS_SHAPE}")
    x = torch.tensor(data, dtype=torch.float32) / 16.0
    return x, torch.tensor(target, dtype=torch.int64)


def mlp(inputs: int, hidden: int, classes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes)
    )


@dataclass(frozen=True)
class Split:
    x_pool: torch.Tensor
    y_pool: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def split(x: torch.Tensor, y: torch.Tensor, test_size: int, generator: torch.Generator) -> Split:
    order = torch.randperm(len(x), generator=generator)
    test, pool = order[:test_size], order[test_size:]
    return Split(x[pool], y[pool], x[test], y[test])


def run_one(config: Config, data: Split, budget: int, labels: str, seed: int, device: str) -> dict:
    """Trains on the first ``budget`` pool examples (true or random labels) and scores the weights."""
    generator = seed_everything(seed)
    x, y = data.x_pool[:budget], data.y_pool[:budget]
    if labels == "random":
        y = torch.randint(0, CLASSES, (budget,), generator=generator)
    x, y = x.to(device), y.to(device)
    model = mlp(x.shape[1], config.hidden, CLASSES).to(device)  # same init for every budget of a seed
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    for _ in range(config.steps):
        full_batch_step(model, optimizer, x, y)
    train_acc, _ = accuracy_and_loss(model, x, y)
    test_acc, _ = accuracy_and_loss(model, data.x_test.to(device), data.y_test.to(device))
    report = score(model, config, seed, device)
    return {
        "labels": labels,
        "budget": budget,
        "seed": seed,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "qubd_ratio": total_ratio(report),
        "qubd_plane_ratios": plane_ratios(report),
    }


def score(model: nn.Module, config: Config, seed: int, device: str) -> qubd.report.Report:
    return qubd.report.score(
        model,
        bits=config.bits,
        clip=config.clip,
        baseline="shuffle",
        seed=seed,
        repeats=config.baseline_repeats,
        device=device,
    )


def init_ratios(config: Config, inputs: int, device: str) -> list[float]:
    """QuBD ratio of the untrained network of each seed: the reference level of no training."""
    ratios = []
    for seed in config.seeds:
        seed_everything(seed)
        model = mlp(inputs, config.hidden, CLASSES).to(device)
        ratios.append(total_ratio(score(model, config, seed, device)))
    return ratios


def aggregate(runs: list[dict], budgets: Sequence[int], labels: str) -> dict[str, list[float]]:
    """Per budget, mean and std over seeds of the accuracies and the ratio."""
    out: dict[str, list[float]] = {}
    for key in ("train_acc", "test_acc", "qubd_ratio"):
        per_budget = [[r[key] for r in runs if r["labels"] == labels and r["budget"] == n] for n in budgets]
        out[key] = [statistics.fmean(v) for v in per_budget]
        out[f"{key}_std"] = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in per_budget]
    out["complexity_reduction"] = [100.0 - r for r in out["qubd_ratio"]]
    return out


def plot(result: dict, path: Path) -> None:
    budgets = result["budgets"]
    config = result["config"]
    fig = new_figure(13.0, 4.3)
    red_ax, acc_ax, scatter_ax = fig.subplots(1, 3)
    styles = {"true": ("tab:blue", "o", "true labels"), "random": ("tab:red", "s", "random labels")}
    for labels in CONDITIONS:
        agg = result[f"{labels}_labels"]
        color, marker, name = styles[labels]
        style = {"color": color, "marker": marker, "capsize": 3}
        red_ax.errorbar(budgets, agg["complexity_reduction"], yerr=agg["qubd_ratio_std"], label=name, **style)
        acc_ax.errorbar(budgets, agg["test_acc"], yerr=agg["test_acc_std"], label=f"{name}, test", **style)
        acc_ax.plot(budgets, agg["train_acc"], color=color, linestyle=":", label=f"{name}, train")
        scatter_ax.scatter(
            agg["test_acc"], agg["complexity_reduction"], color=color, marker=marker, label=name
        )
        if labels == "true":  # the random-label points sit in one cluster at chance accuracy
            for n, a, r in zip(budgets, agg["test_acc"], agg["complexity_reduction"], strict=True):
                scatter_ax.annotate(str(n), (a, r), textcoords="offset points", xytext=(4, 3), fontsize=7)
    init = 100.0 - statistics.fmean(result["init_qubd_ratio"])
    for ax in (red_ax, scatter_ax):
        ax.axhline(init, color="gray", linestyle="--", linewidth=1, label="untrained network")
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_ylabel("complexity reduction: 100 - QuBD ratio (%)")
    for ax in (red_ax, acc_ax):
        ax.set_xscale("log")
        ax.set_xticks(budgets, [str(n) for n in budgets], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_xlabel("training examples (data budget)")
    red_ax.set_title(f"QuBD vs shuffled weights ({config['bits']} bits), mean ± std", fontsize=10)
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(-0.02, 1.02)
    acc_ax.set_title("Accuracy", fontsize=10)
    scatter_ax.set_xlabel("test accuracy")
    scatter_ax.set_title("Reduction vs test accuracy (numbers: budget)", fontsize=10)
    for ax in (red_ax, acc_ax, scatter_ax):
        ax.legend(fontsize=8)
    fig.suptitle(
        f"digits, MLP 64-{config['hidden']}-{config['hidden']}-10, {config['steps']} full-batch AdamW steps, "
        f"{len(config['seeds'])} seed(s)",
        fontsize=11,
    )
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    started = time.perf_counter()
    config = SMOKE if args.smoke else Config()  # --seed shifts all seeds (0, 1, 2 -> s, s + 1, s + 2)
    config = dataclasses.replace(config, seeds=tuple(args.seed + s for s in config.seeds))
    x, y = load_digits_tensors()
    runs = []
    for seed in config.seeds:
        data = split(x, y, config.test_size, seed_everything(seed))
        for labels in CONDITIONS:
            for budget in config.budgets:
                runs.append(run_one(config, data, budget, labels, seed, args.device))
                r = runs[-1]
                print(
                    f"seed {seed} {labels:6s} labels  n={budget:5d}  train acc {r['train_acc']:.3f}  "
                    f"test acc {r['test_acc']:.3f}  QuBD ratio {r['qubd_ratio']:.2f}%",
                    flush=True,
                )
    result = {
        "experiment": "data_budget",
        "smoke": args.smoke,
        "config": dataclasses.asdict(config),
        "budgets": list(config.budgets),
        "init_qubd_ratio": init_ratios(config, x.shape[1], args.device),
        **{f"{labels}_labels": aggregate(runs, config.budgets, labels) for labels in CONDITIONS},
        "runs": runs,
    }
    result["environment"] = environment(args.device, started)
    write_json(args.out / "data_budget.json", result)
    plot(result, args.out / "data_budget.png")
    return result


if __name__ == "__main__":
    main()
