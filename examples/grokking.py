"""Grokking on modular addition, with the weights' QuBD tracked during training (paper, Fig. 5).

Task: (a + b) mod 97 for all 97 x 97 pairs; a random half is the training set, the rest validation.
Model: an embedding of each operand, concatenated, into a 2-layer MLP (ReLU). Full-batch AdamW with
weight decay 1. Every ``eval_every`` steps: train/validation accuracy and loss, and the QuBD of the
three weight matrices (4 bits, robust range at the 99.9th percentile) as a ratio (percent) to the same
matrices with their values shuffled (``qubd.report.ComplexityTracker``, baseline "shuffle").

    python examples/grokking.py --out docs/results          # the full run (minutes on a CPU)
    python examples/grokking.py --smoke --out /tmp/grok      # seconds

Writes ``OUT/grokking.json`` (lists ``steps``, ``train_acc``, ``val_acc``, ``train_loss``, ``val_loss``,
``qubd_ratio``, ``qubd_plane_ratios``, ``weight_norm``, and the config) and ``OUT/grokking.png``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from _common import (
    accuracy_and_loss,
    environment,
    full_batch_step,
    new_figure,
    no_structure_line,
    parse_args,
    plane_ratios,
    save_figure,
    seed_everything,
    total_ratio,
    write_json,
    z_score,
)
from torch import nn

from qubd.report import ComplexityTracker


@dataclass(frozen=True)
class Config:
    modulus: int = 97
    train_fraction: float = 0.5
    embed_dim: int = 512
    hidden: int = 512
    steps: int = 11000
    eval_every: int = 100
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)  # torch's default, as the authors' grokking.py uses
    bits: int = 4
    clip: float = 99.9
    baseline_repeats: int = 1
    seed: int = 0


SMOKE = Config(modulus=23, embed_dim=16, hidden=32, steps=40, eval_every=10)
# What is logged at each evaluation (the JSON's lists, one entry per evaluation).
CURVES = (
    "steps",
    "train_acc",
    "val_acc",
    "train_loss",
    "val_loss",
    "qubd_ratio",
    "qubd_plane_ratios",
    "expected_ratio",
    "expected_plane_ratios",
    "expected_z",
    "expected_plane_z",
    "weight_norm",
)


class ModularMLP(nn.Module):
    """Embeds a and b (``modulus`` tokens each), concatenates them, and maps them to logits of a + b."""

    def __init__(self, modulus: int, embed_dim: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(modulus, embed_dim)
        self.mlp = nn.Sequential(nn.Linear(2 * embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, modulus))

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embed(pairs).flatten(1))


def modular_addition_split(
    modulus: int, train_fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """All pairs (a, b) with label (a + b) mod ``modulus``, randomly split: x_train, y_train, x_val, y_val."""
    a, b = torch.meshgrid(torch.arange(modulus), torch.arange(modulus), indexing="ij")
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
    labels = (pairs[:, 0] + pairs[:, 1]) % modulus
    order = torch.randperm(len(pairs), generator=generator)
    n_train = round(train_fraction * len(pairs))
    train, val = order[:n_train], order[n_train:]
    return pairs[train], labels[train], pairs[val], labels[val]


def weight_norm(model: nn.Module) -> float:
    """L2 norm of all parameters together (weight decay shrinks it; grokking usually comes with a drop)."""
    return torch.sqrt(sum((p.detach().double() ** 2).sum() for p in model.parameters())).item()


def train(config: Config, device: str, progress: Path | None = None) -> dict[str, list]:
    """Trains full-batch and returns the logged curves (one entry per evaluation, step 0 included).
    With ``progress``, the curves so far are rewritten there (atomically) after each evaluation, so
    that a run stopped early leaves what it measured."""
    started = time.perf_counter()
    generator = seed_everything(config.seed)
    x_train, y_train, x_val, y_val = (
        t.to(device) for t in modular_addition_split(config.modulus, config.train_fraction, generator)
    )
    model = ModularMLP(config.modulus, config.embed_dim, config.hidden).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=config.betas
    )
    trackers = tuple(
        ComplexityTracker(
            model,
            every=config.eval_every,
            bits=config.bits,
            clip=config.clip,
            baseline=baseline,
            seed=config.seed,
            repeats=config.baseline_repeats,
            device=device,
        )
        for baseline in ("shuffle", "expected")
    )
    log: dict[str, list] = {k: [] for k in CURVES}
    for step in range(config.steps + 1):
        if step % config.eval_every == 0 or step == config.steps:
            _evaluate(log, step, model, trackers, (x_train, y_train, x_val, y_val))
            if progress is not None:
                seconds = round(time.perf_counter() - started, 2)
                so_far = {"config": dataclasses.asdict(config), "seconds": seconds}
                write_json(progress, {**so_far, **log}, quiet=True)
        if step == config.steps:
            break
        full_batch_step(model, optimizer, x_train, y_train)
    return log


def _evaluate(
    log: dict[str, list],
    step: int,
    model: nn.Module,
    trackers: tuple[ComplexityTracker, ComplexityTracker],
    data,
) -> None:
    x_train, y_train, x_val, y_val = data
    train_acc, train_loss = accuracy_and_loss(model, x_train, y_train)
    val_acc, val_loss = accuracy_and_loss(model, x_val, y_val)
    shuffled, expected = (tracker.log(step) for tracker in trackers)
    values = (
        step,
        train_acc,
        val_acc,
        train_loss,
        val_loss,
        total_ratio(shuffled),
        plane_ratios(shuffled),
        total_ratio(expected),
        plane_ratios(expected),
        z_score(expected.total),
        [z_score(p) for p in expected.planes],
        weight_norm(model),
    )
    for key, value in zip(CURVES, values, strict=True):
        log[key].append(value)
    print(
        f"step {step:6d}  train acc {train_acc:.3f}  val acc {val_acc:.3f}  "
        f"QuBD ratio {log['qubd_ratio'][-1]:.2f}% (expected {log['expected_ratio'][-1]:.2f}%)  "
        f"|w| {log['weight_norm'][-1]:.1f}",
        flush=True,
    )


def first_step_at(steps: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """The first logged step where ``values`` reaches ``threshold`` (None if never)."""
    return next((s for s, v in zip(steps, values, strict=True) if v >= threshold), None)


def mean_where(values: Sequence[float], mask: Sequence[bool]) -> float | None:
    chosen = [v for v, m in zip(values, mask, strict=True) if m]
    return sum(chosen) / len(chosen) if chosen else None


def summarize(log: dict[str, list]) -> dict[str, float | int | None]:
    """Milestones, and the ratio averaged over two phases defined by accuracy alone: memorised (train
    accuracy >= 99%, validation < 10%) and generalised (validation >= 99%)."""
    memorised = [t >= 0.99 and v < 0.1 for t, v in zip(log["train_acc"], log["val_acc"], strict=True)]
    generalised = [v >= 0.99 for v in log["val_acc"]]
    msb = [planes[-1] for planes in log["qubd_plane_ratios"]]
    return {
        "train_acc_99_step": first_step_at(log["steps"], log["train_acc"], 0.99),
        "val_acc_99_step": first_step_at(log["steps"], log["val_acc"], 0.99),
        "final_train_acc": log["train_acc"][-1],
        "final_val_acc": log["val_acc"][-1],
        "qubd_ratio_start": log["qubd_ratio"][0],
        "qubd_ratio_max": max(log["qubd_ratio"]),
        "qubd_ratio_end": log["qubd_ratio"][-1],
        "qubd_ratio_memorised_mean": mean_where(log["qubd_ratio"], memorised),
        "qubd_ratio_generalised_mean": mean_where(log["qubd_ratio"], generalised),
        "msb_ratio_memorised_mean": mean_where(msb, memorised),
        "msb_ratio_generalised_mean": mean_where(msb, generalised),
        "evaluations_memorised": sum(memorised),
        "evaluations_generalised": sum(generalised),
    }


def plot(log: dict[str, list], config: Config, path: Path) -> None:
    fig = new_figure(8.0, 7.5)
    acc, ratio = fig.subplots(2, 1, sharex=True)
    steps = log["steps"]
    acc.plot(steps, log["train_acc"], color="tab:blue", label="train")
    acc.plot(steps, log["val_acc"], color="tab:orange", label="validation")
    acc.set_ylabel("accuracy")
    acc.set_ylim(-0.02, 1.02)
    acc.set_title(
        f"(a + b) mod {config.modulus}, {config.train_fraction:.0%} of pairs for training, "
        f"AdamW wd={config.weight_decay:g}",
        fontsize=10,
    )
    summary = summarize(log)
    for key, color, what in (
        ("train_acc_99_step", "tab:blue", "train"),
        ("val_acc_99_step", "tab:orange", "val"),
    ):
        if summary[key] is not None:
            for ax in (acc, ratio):
                ax.axvline(summary[key], color=color, linestyle=":", linewidth=1.2)
            acc.plot(
                [], [], color=color, linestyle=":", label=f"{what} acc reaches 99% (step {summary[key]})"
            )
    acc.legend(loc="center right", fontsize=8)
    planes = list(zip(*log["qubd_plane_ratios"], strict=True))
    for plane, values in enumerate(planes):
        name = f"plane {plane}" + (" (MSB)" if plane == config.bits - 1 else " (LSB)" if plane == 0 else "")
        ratio.plot(steps, values, linewidth=0.8, alpha=0.7, label=name)
    ratio.plot(steps, log["qubd_ratio"], color="black", linewidth=2, label="all planes")
    no_structure_line((ratio,), 100.0)
    ratio.set_ylabel("QuBD / shuffled weights (%)")
    ratio.set_xlabel("training step (full batch)")
    ratio.legend(fontsize=8, ncol=3, loc="lower left")
    ratio.set_title(
        f"QuBD ratio of the weight matrices ({config.bits} bits, clip {config.clip:g})", fontsize=10
    )
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv, _add_arguments)
    started = time.perf_counter()
    config = dataclasses.replace(SMOKE if args.smoke else Config(), seed=args.seed)
    if args.width is not None:
        config = dataclasses.replace(config, embed_dim=args.width, hidden=args.width)
    progress = args.out / f"{args.name}.partial.json"
    if args.from_partial:  # a run stopped early: its curves so far, marked incomplete
        partial = json.loads(progress.read_text(encoding="utf-8"))
        config = Config(**{**partial["config"], "betas": tuple(partial["config"]["betas"])})
        log = {key: partial[key] for key in CURVES}
    else:
        log = train(config, args.device, progress=progress)
    result = {
        "experiment": "grokking",
        "smoke": args.smoke,
        "complete": log["steps"][-1] == config.steps,
        "config": dataclasses.asdict(config),
        **log,
        "summary": summarize(log),
        "environment": environment(args.device, started),
    }
    if args.from_partial:  # the wall time of the training run, not of this rewrite
        result["environment"]["seconds"] = partial.get("seconds")
    write_json(args.out / f"{args.name}.json", result)
    progress.unlink()
    plot(log, config, args.out / f"{args.name}.png")
    return result


def _add_arguments(parser) -> None:
    parser.add_argument("--width", type=int, help="embedding and hidden width (default: the authors' 512)")
    parser.add_argument("--name", default="grokking", help="file name of the results, without extension")
    parser.add_argument(
        "--from-partial",
        action="store_true",
        help="write the results and figure from OUT/NAME.partial.json, the curves of a run stopped early",
    )


if __name__ == "__main__":
    main()
