"""Write a Llama-shaped checkpoint of random weights as a Hugging Face sharded safetensors directory.

    python benchmarks/make_sharded_checkpoint.py /tmp/llama-like --layers 8          # about 3.7 GB
    python benchmarks/make_sharded_checkpoint.py /tmp/llama-70b-like --preset llama-70b --layers 80

Shapes follow Llama (``--preset``: llama-7b, llama-8b or llama-70b); ``--layers`` sets how many
decoder layers, hence the size. Weights are normal(0, 0.02) in bfloat16 (``--dtype``), norms are ones.
Tensors are generated one shard at a time, so memory stays near ``--shard-gb``.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

PRESETS = {  # hidden, intermediate, attention heads, key/value heads, vocabulary
    "llama-7b": (4096, 11008, 32, 32, 32000),
    "llama-8b": (4096, 14336, 32, 8, 128256),
    "llama-70b": (8192, 28672, 64, 8, 128256),
    "tiny": (64, 128, 4, 2, 256),  # a few hundred KB a layer: the smoke runs of tests/test_benchmarks.py
}
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
INIT_STD = 0.02
INDEX_NAME = "model.safetensors.index.json"


@dataclass(frozen=True)
class Shape:
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads


def tensor_shapes(shape: Shape, layers: int) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of a Llama checkpoint, in the order Hugging Face writes them."""
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_dim
    tensors = [("model.embed_tokens.weight", (shape.vocab, h))]
    for layer in range(layers):
        p = f"model.layers.{layer}"
        tensors += [
            (f"{p}.input_layernorm.weight", (h,)),
            (f"{p}.self_attn.q_proj.weight", (h, h)),
            (f"{p}.self_attn.k_proj.weight", (kv, h)),
            (f"{p}.self_attn.v_proj.weight", (kv, h)),
            (f"{p}.self_attn.o_proj.weight", (h, h)),
            (f"{p}.post_attention_layernorm.weight", (h,)),
            (f"{p}.mlp.gate_proj.weight", (i, h)),
            (f"{p}.mlp.up_proj.weight", (i, h)),
            (f"{p}.mlp.down_proj.weight", (h, i)),
        ]
    tensors += [("model.norm.weight", (h,)), ("lm_head.weight", (shape.vocab, h))]
    return tensors


def plan_shards(tensors: list[tuple[str, tuple[int, ...]]], item_bytes: int, shard_bytes: int) -> list[list]:
    """Greedy split into shards of at most ``shard_bytes`` (a larger tensor gets a shard of its own)."""
    shards: list[list] = [[]]
    size = 0
    for name, shape in tensors:
        nbytes = math.prod(shape) * item_bytes
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += nbytes
    return shards


def make_checkpoint(
    out: Path,
    shape: Shape,
    layers: int,
    dtype: torch.dtype = torch.bfloat16,
    shard_gb: float = 2.0,
    seed: int = 0,
) -> int:
    """Write the shards and ``model.safetensors.index.json`` into ``out``; returns the bytes of weights."""
    out.mkdir(parents=True, exist_ok=True)
    item_bytes = torch.empty((), dtype=dtype).element_size()
    shards = plan_shards(tensor_shapes(shape, layers), item_bytes, int(shard_gb * 2**30))
    generator = torch.Generator().manual_seed(seed)
    weight_map, total = {}, 0
    for k, shard in enumerate(shards, start=1):
        file = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        tensors = {}
        for name, dims in shard:
            if len(dims) == 1:
                tensors[name] = torch.ones(dims, dtype=dtype)
            else:
                tensors[name] = (torch.randn(dims, generator=generator) * INIT_STD).to(dtype)
            weight_map[name] = file
            total += tensors[name].numel() * item_bytes
        save_file(tensors, out / file, metadata={"format": "pt"})
        del tensors
        print(f"wrote {out / file}", flush=True)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / INDEX_NAME).write_text(json.dumps(index, indent=2))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="llama-7b")
    parser.add_argument("--layers", type=int, default=8, help="decoder layers (default 8: about 3.7 GB)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    parser.add_argument("--shard-gb", type=float, default=2.0, help="shard size in GiB (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shape = Shape(*PRESETS[args.preset])
    total = make_checkpoint(args.out, shape, args.layers, DTYPES[args.dtype], args.shard_gb, args.seed)
    print(f"{args.out}: {total / 2**30:.2f} GiB of weights ({args.preset} shapes, {args.layers} layers)")


if __name__ == "__main__":
    main()
