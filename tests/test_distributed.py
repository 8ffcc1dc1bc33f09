"""Multi-process scoring with torch.distributed (gloo on CPU, 2 and 3 processes): sharded (FSDP2,
tensor-parallel Shard(1)) and replicated (DDP) models, the distributed primitives, ``torchrun -m
qubd score``, and failures. The oracle is always a single-process computation on the whole tensor:
``torch.ops.qubd.order_statistics``, the plain-torch block histograms, ``qubd.score``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import qubd
from qubd.distributed import balance
from qubd.distributed.halo import ShardLayout
from qubd.reference.blocks import plane_histograms
from tests import distributed_workers as workers

REPO = Path(__file__).resolve().parents[1]
WORLD_CHECKS = {
    2: ["order_statistics", "halo", "fsdp", "ddp", "faults"],
    3: ["order_statistics", "halo", "fsdp", "shard1", "cli_fault"],
}


@pytest.fixture(scope="module", params=sorted(WORLD_CHECKS))
def world(request, tmp_path_factory) -> tuple[int, list[dict], Path]:
    """(world size, every rank's results of the checks run with that many processes, their folder)."""
    size = request.param
    tmp = tmp_path_factory.mktemp(f"world{size}")
    checkpoint(tmp / "bad.safetensors", nan=True)
    results = workers.run_world(size, WORLD_CHECKS[size], str(tmp))
    for rank, result in enumerate(results):
        for name, value in result.items():
            assert "crashed" not in value, f"rank {rank}, {name}:\n{value['crashed']}"
    return size, results, tmp


def results_of(world, check: str) -> list[dict]:
    size, results, _ = world
    if check not in WORLD_CHECKS[size]:
        pytest.skip(f"{check} runs with {[w for w, c in WORLD_CHECKS.items() if check in c]} processes")
    return [r[check] for r in results]


def test_order_statistics_equal_one_process(world):
    for dtype in (torch.float32, torch.float64):
        full = workers.order_statistics_input(dtype)
        n = full.numel()
        want = torch.ops.qubd.order_statistics(full, [0, 1, 2, n // 3, n // 2, n - 2, n - 1])
        for rank_results in results_of(world, "order_statistics"):
            for split in ("even", "uneven"):
                assert rank_results[f"{dtype}-{split}"] == (str(want.dtype), want.tolist()), (dtype, split)


def test_halo_blocks_add_up_to_the_whole_matrix(world):
    torch.manual_seed(2)
    codes = torch.randint(0, 256, (23, 30), dtype=torch.uint8)
    want = plane_histograms(codes, 8)
    for rank_results in results_of(world, "halo"):
        assert len(rank_results) == 4
        for key, got in rank_results.items():
            assert got == (str(want.dtype), want.tolist()), key


def test_shard_layout_owned_rows():
    layout = ShardLayout(0, 23, (0, 1, 1), (1, 0, 22))
    assert [layout.owned(r) for r in range(3)] == [(0, 4), (4, 4), (4, 20)]
    assert [layout.needed(r) for r in range(3)] == [(1, 4), (4, 4), (23, 20)]
    with pytest.raises(ValueError, match="tile"):
        ShardLayout(0, 10, (0, 6), (5, 4))


def single_process_planes(clip, bits) -> dict:
    report = qubd.score(workers.transformer(), bits=bits, clip=clip, baseline="none")
    return {t.name: t.planes for t in report.tensors}


def test_fsdp2_scores_equal_one_process(world):
    results = results_of(world, "fsdp")
    for clip, bits in workers.CONFIGS:
        want = single_process_planes(clip, bits)
        assert sum(p is not None for p in want.values()) == 10
        for rank_results in results:
            if f"{clip}-{bits}" in rank_results or world[0] == 2:
                assert rank_results[f"{clip}-{bits}"] == want, (clip, bits)


def test_tracker_on_fsdp2_model_logs_one_process_scores(world, tmp_path_factory):
    want = {k: v for k, v in single_process_planes(99.9, 8).items() if v is not None}
    for rank_results in results_of(world, "fsdp"):
        assert rank_results["tracker"] == want


def test_tensor_parallel_shard1_equals_one_process(world):
    want = single_process_planes(99.9, 8)
    for rank_results in results_of(world, "shard1"):
        assert rank_results["planes"] == want


def test_ddp_replicated_tensors_split_over_ranks_equal_one_process(world):
    want = qubd.score(workers.transformer(), bits=8, clip=99.9, baseline="shuffle", repeats=2).to_dict()
    for rank_results in results_of(world, "ddp"):
        got = rank_results["report"]
        assert got["source"] == "TinyTransformer"  # DDP's module, under its own names
        assert without_timing(got) == without_timing(json.loads(json.dumps(want)))


def test_faults_reach_every_rank(world):
    results = results_of(world, "faults")
    size = world[0]
    for rank_results in results:
        assert "ranks disagree on the options" in rank_results["options"]
        assert "sharded" in rank_results["shuffle"] and "baseline='none'" in rank_results["shuffle"]
        assert "blocks.1.up.weight" in rank_results["nonfinite"] and "1 NaN/Inf" in rank_results["nonfinite"]
    assert len({r["nonfinite"] for r in results}) == 1 and len({r["options"] for r in results}) == 1
    assert size == 2


def test_balance_spreads_by_size():
    owners = balance([10, 1, 7, 3, 3, 9], 3)
    loads = [sum(s for s, o in zip([10, 1, 7, 3, 3, 9], owners, strict=True) if o == r) for r in range(3)]
    assert sorted(loads) == [10, 11, 12]
    assert balance([], 2) == []


def torchrun(nproc: int, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
    command += [f"--master_port={workers.free_port()}", "-m", "qubd", "score", *args, "--quiet"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def checkpoint(path: Path, nan: bool = False) -> Path:
    torch.manual_seed(3)
    tensors = {f"layer{i}.weight": torch.randn(30 + 7 * i, 20 + 3 * i) for i in range(7)}
    tensors["layer2.bias"] = torch.randn(10)
    if nan:
        tensors["layer3.weight"][2, 3] = float("nan")
    save_file(tensors, path)
    return path


def without_timing(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("seconds", "weights_per_second")}


def test_torchrun_score_equals_single_process_json(tmp_path):
    ckpt = checkpoint(tmp_path / "model.safetensors")
    done = torchrun(3, str(ckpt), "--json", "multi.json", "--baseline", "shuffle", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    want = qubd.score(str(ckpt), bits=8, clip=99.9, baseline="shuffle").to_dict()
    got = json.loads((tmp_path / "multi.json").read_text())
    assert without_timing(got) == without_timing(json.loads(json.dumps(want)))


def test_failing_rank_stops_every_rank_without_report(world):
    results = results_of(world, "cli_fault")
    for rank_results in results:
        assert rank_results["status"] == 1
        errors = rank_results["stderr"].strip().splitlines()
        assert len(errors) == 1 and errors[0].startswith("qubd: error: rank ")
        assert "'layer3.weight' has 1 NaN/Inf" in errors[0]
    assert not (world[2] / "out.json").exists()
