"""Compile every Triton kernel of qubd for an H100 (sm_90) without a GPU.

Usage: ``python -m tests.triton_compile_check``.

The interpreter (``TRITON_INTERPRET=1``, how CI runs the kernels) executes them as numpy code and
accepts things the compiler refuses, so CI also compiles each kernel down to machine code with the
ptxas that ships with Triton, for every dtype, constexpr and integer width its launches use. What
this leaves out: a launch also tells the compiler which pointers are 16-byte aligned (it may then
vectorise loads differently), so the code compiled here is not byte for byte what a GPU runs. Run
with ``TRITON_INTERPRET`` unset (tests/test_triton_compile.py starts it in a subprocess).
"""

from __future__ import annotations

import itertools
import os
import sys

import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from qubd.backends.triton import ctm_score, histograms, order_statistics, quantize

H100 = GPUTarget("cuda", 90, 32)
FLOAT_POINTERS = {"fp32": "*fp32", "bf16": "*bf16", "fp16": "*fp16", "fp64": "*fp64"}
CODE_POINTERS = {"uint8": "*u8", "int16": "*i16", "int32": "*i32", "int64": "*i64"}


def _compute(src: str) -> str:
    return "*fp64" if src == "*fp64" else "*fp32"


def histogram_cases():
    # Python ints reach a kernel as i32, or i64 past 2**31 (the sizes of very large tensors).
    for (src, from_weights, bits), index in itertools.product(
        [(p, True, 8) for p in FLOAT_POINTERS.values()]
        + [("*fp32", True, 16), ("*bf16", True, 3)]
        + [(p, False, b) for p, b in (("*u8", 1), ("*u8", 8), ("*i16", 11), ("*i32", 16), ("*i64", 5))],
        ("i32", "i64"),
    ):
        signature = {
            "src_ptr": src,
            "lo_ptr": _compute(src) if from_weights else "constexpr",
            "delta_ptr": _compute(src) if from_weights else "constexpr",
            "hist_ptr": "*i32",
            "hot_ptr": "*i64",
            **dict.fromkeys(("n_cols", "n_block_rows", "n_block_cols", "n_tile_cols", "n_tiles"), index),
            "copies": "i32",
        }
        constexprs = {
            "BITS": bits,
            "FROM_WEIGHTS": from_weights,
            "TILE_ROWS": histograms.TILE_BLOCKS // histograms.MAX_TILE_BLOCK_COLS,
            "TILE_COLS": histograms.MAX_TILE_BLOCK_COLS,
            "PLANES": triton.next_power_of_2(bits),
        }
        if not from_weights:  # integer codes: no grid (None)
            constexprs.update(lo_ptr=None, delta_ptr=None)
        if index == "i32":  # an int argument equal to 1 is specialised as a constant
            constexprs["copies"] = 1
        yield histograms._histograms_kernel, signature, constexprs, HISTOGRAM_OPTIONS
    elements = {"*fp32": tl.float32, "*bf16": tl.bfloat16, "*fp16": tl.float16, "*fp64": tl.float64}
    assert set(elements.values()) == set(histograms.ELEMENT_TYPES.values())
    for src, bits in [(p, 8) for p in FLOAT_POINTERS.values()] + [("*fp32", 16), ("*bf16", 3)]:
        signature = {
            "src_table_ptr": "*i64",
            "lo_ptr": _compute(src),
            "delta_ptr": _compute(src),
            "hist_ptr": "*i32",
            "hot_ptr": "*i64",
            "segments_ptr": "*i64",
            "programs_ptr": "*i32",
        }
        constexprs = {
            "ELEMENT": elements[src],
            "BITS": bits,
            "TILE_ROWS": histograms.TILE_BLOCKS // histograms.BATCH_TILE_COLS,
            "TILE_COLS": histograms.BATCH_TILE_COLS,
            "PLANES": triton.next_power_of_2(bits),
        }
        yield histograms._batched_histograms_kernel, signature, constexprs, HISTOGRAM_OPTIONS


HISTOGRAM_OPTIONS = {"num_warps": histograms.NUM_WARPS, "enable_fp_fusion": False}


def quantize_cases():
    for src, out, index in itertools.product(FLOAT_POINTERS.values(), ("*u8", "*i32"), ("i32", "i64")):
        signature = {
            "w_ptr": src,
            "lo_ptr": _compute(src),
            "delta_ptr": _compute(src),
            "out_ptr": out,
            "n": index,
        }
        constexprs = {"MAX_CODE": 255 if out == "*u8" else 65535, "BLOCK": quantize.QUANTIZE_BLOCK}
        yield quantize._quantize_kernel, signature, constexprs, {"enable_fp_fusion": False}


def order_statistics_cases():
    os_ = order_statistics
    kinds = {
        os_.F32: "*fp32",
        os_.BF16: "*bf16",
        os_.F16: "*fp16",
        os_.F64: "*fp64",
        os_.KEYS32: "*i32",
        os_.KEYS64: "*i64",
    }
    key_bits = {**os_._KEY_BITS, os_.KEYS32: 32, os_.KEYS64: 64}
    for (kind, src), index in itertools.product(kinds.items(), ("i32", "i64")):
        bits = key_bits[kind]
        # First pass (one prefix), and a later one with two prefixes (the two quantiles of a clip).
        for done, prefixes in ((0, 1), (os_.RADIX_BITS, 2)):
            digit_bits = min(os_.RADIX_BITS, bits - done)
            signature = {
                "src_ptr": src,
                "n": index,
                "prefix_ptr": "*i64",
                "hist_ptr": "*i64",
                "bad_ptr": "*i64",
                "n_tiles": index,
            }
            constexprs = {
                "SRC": kind,
                "KEY_BITS": bits,
                "DONE_BITS": done,
                "DIGIT_BITS": digit_bits,
                "PREFIXES": prefixes,
                "SLOTS": triton.next_power_of_2(prefixes),
                "BLOCK": os_.PASS_BLOCK,
            }
            yield os_._radix_histogram_kernel, signature, constexprs, {"num_warps": 8}
        if kind in (os_.F32, os_.F64):  # compaction reads the weights, after the first pass
            signature = {
                "src_ptr": src,
                "n": index,
                "prefix_ptr": "*i64",
                "out_ptr": "*i64" if bits == 64 else "*i32",
                "count_ptr": "*i64",
                "n_tiles": index,
            }
            constexprs = {
                "SRC": kind,
                "KEY_BITS": bits,
                "DONE_BITS": os_.RADIX_BITS,
                "PREFIXES": 2,
                "BLOCK": os_.PASS_BLOCK,
            }
            yield os_._radix_compact_kernel, signature, constexprs, {"num_warps": 8}


def ctm_score_cases():
    signature = {"hist_ptr": "*i64", "ctm_ptr": "*fp64", "partial_ptr": "*fp64"}
    constexprs = {"CODES": 65536, "SPLIT": ctm_score.SCORE_SPLIT, "BLOCK": ctm_score.SCORE_BLOCK}
    yield ctm_score._ctm_score_kernel, signature, constexprs, {"num_warps": 8}


def main() -> int:
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("unset TRITON_INTERPRET: under the interpreter the kernels are not compilable objects")
        return 2
    count = 0
    for cases in (histogram_cases, quantize_cases, order_statistics_cases, ctm_score_cases):
        for kernel, signature, constexprs, options in cases():
            signature = {**signature, **dict.fromkeys(constexprs, "constexpr")}
            try:
                compiled = triton.compile(
                    ASTSource(kernel, signature, constexprs), target=H100, options=options
                )
            except Exception as err:
                print(f"FAILED {kernel.fn.__name__} {constexprs} {signature}:\n{err}")
                return 1
            assert compiled.asm.get("cubin"), f"{kernel.fn.__name__}: no machine code"
            count += 1
    print(f"compiled {count} kernel specialisations for sm_90")
    return 0


if __name__ == "__main__":
    sys.exit(main())
