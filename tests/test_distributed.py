"""Multi-process scoring with torch.distributed (gloo on CPU, 2 and 3 processes): sharded (FSDP2,
tensor-parallel Shard(1)) and replicated (DDP) models, the distributed primitives, ``torchrun -m
qubd score``, and failures. The oracle is always a single-process computation on the whole tensor:
``torch.ops.qubd.order_statistics``, the plain-torch block histograms, ``qubd.score``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import qubd
from qubd.distributed import balance
from qubd.distributed.halo import ShardLayout
from qubd.reference.blocks import plane_histograms
from qubd.report.range_notes import FLOAT64_GRID
from qubd.report.serialize import log_entry
from tests import distributed_workers as workers
from tests.test_cli import run_python_m_qubd

REPO = Path(__file__).resolve().parents[1]
WORLD_CHECKS = {
    2: [
        "order_statistics",
        "halo",
        "fsdp",
        "wide",
        "trainer_callback",
        "ddp",
        "faults",
        "cli",
        "cli_reference",
        "cli_unexpected",
    ],
    3: ["order_statistics", "halo", "fsdp", "shard1", "cli_fault"],
}
BOTH = pytest.mark.parametrize("size", sorted(WORLD_CHECKS))


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """``worlds(size)``: (every rank's results of the checks run by ``size`` processes, their folder);
    the processes are started once per size, on first use."""
    runs = {}

    def get(size: int) -> tuple[list[dict], Path]:
        if size not in runs:
            tmp = tmp_path_factory.mktemp(f"world{size}")
            checkpoint(tmp / "model.safetensors")
            checkpoint(tmp / "bad.safetensors", nan=True)
            results = workers.run_world(size, WORLD_CHECKS[size], str(tmp))
            for rank, result in enumerate(results):
                for name, value in result.items():
                    assert "crashed" not in value, f"rank {rank}, {name}:\n{value['crashed']}"
            runs[size] = results, tmp
        return runs[size]

    return get


def results_of(worlds, size: int, check: str) -> list[dict]:
    return [r[check] for r in worlds(size)[0]]


@BOTH
def test_order_statistics_equal_one_process(worlds, size):
    """Every float dtype (bf16/fp16 by their 16-bit keys), ties, signed zeros, the dtype's extremes and
    subnormals, the first and last ranks; shards even, uneven, empty. The oracles: one process's
    native selection (bit for bit, zeros' signs included) and a sort of the whole tensor."""
    results = results_of(worlds, size, "order_statistics")
    for dtype in workers.ORDER_DTYPES:
        for name, full in workers.order_statistics_inputs(dtype).items():
            ranks = workers.order_statistics_ranks(full.numel())
            want = torch.ops.qubd.order_statistics(full, ranks)
            assert (
                want.tolist()
                == torch.sort(full.float() if dtype != torch.float64 else full).values[ranks].tolist()
            )
            signs = torch.signbit(want).tolist()
            for rank_results in results:
                for split in workers.shard_sizes(full.numel(), size):
                    got_dtype, got = rank_results[f"{name}-{dtype}-{split}"]
                    assert (got_dtype, got) == (str(want.dtype), want.tolist()), (name, dtype, split)
                    assert torch.signbit(torch.tensor(got)).tolist() == signs, (name, dtype, split)


@BOTH
def test_halo_blocks_add_up_to_the_whole_matrix(worlds, size):
    torch.manual_seed(2)
    codes = torch.randint(0, 256, (23, 30), dtype=torch.uint8)
    want = plane_histograms(codes, 8)
    for rank_results in results_of(worlds, size, "halo"):
        assert len(rank_results["histograms"]) == 4
        for key, got in rank_results["histograms"].items():
            assert got == (str(want.dtype), want.tolist()), key
        assert 0 <= rank_results["most_rows_received"] <= 3


def test_shard_layout_owned_rows():
    layout = ShardLayout(0, 23, (0, 1, 1), (1, 0, 22))
    assert [layout.owned(r) for r in range(3)] == [(0, 4), (4, 4), (4, 20)]
    assert [layout.needed(r) for r in range(3)] == [(1, 4), (4, 4), (23, 20)]
    with pytest.raises(ValueError, match="tile"):
        ShardLayout(0, 10, (0, 6), (5, 4))


def single_process(clip, bits, baseline: str = "expected") -> qubd.Report:
    return qubd.score(workers.transformer(), bits=bits, clip=clip, baseline=baseline)


def single_process_planes(clip, bits) -> dict:
    return {t.name: t.planes for t in single_process(clip, bits, "none").tensors}


def assert_has_expected_baseline_and_note(report: dict) -> None:
    """The report compared carries what a lossy merge would drop: closed-form baselines, a note."""
    scored = [t for t in report["tensors"] if t["skipped"] is None]
    assert len(scored) == 11 and all(len(t["baseline_planes_std"]) == report["bits"] for t in scored)
    assert report["baseline"] == "expected" and report["total"]["z"] is not None
    assert [t["name"] for t in scored if t["note"]] == ["constant.weight"]


@BOTH
def test_fsdp2_scores_and_expected_baseline_equal_one_process(worlds, size):
    """Sharded on dim 0 over 2 and 3 ranks, uneven (38, 101, 53 rows): the whole JSON report."""
    results = results_of(worlds, size, "fsdp")
    for clip, bits in workers.fsdp_configs(size):
        want = workers.report_dict(single_process(clip, bits))
        assert_has_expected_baseline_and_note(want)
        for rank_results in results:
            assert rank_results[f"{clip}-{bits}"] == want, (clip, bits)
    for rank_results in results:
        assert rank_results["none"] == single_process_planes(None, 8)


@BOTH
def test_tracker_on_fsdp2_model_logs_one_process_scores(worlds, size):
    want = log_entry(single_process(99.9, 8), 0)
    for rank_results in results_of(worlds, size, "fsdp"):
        assert without_time(rank_results["tracker"]) == without_time(want)
    log = json.loads((worlds(size)[1] / "log.json").read_text())
    assert without_time(log["entries"][0]) == without_time(want)


def test_trainer_callback_on_fsdp2_model_scores_on_every_rank(worlds):
    """Every rank runs the tracker (rank 0 alone would wait for the others forever); rank 0 writes."""
    pytest.importorskip("transformers", reason="transformers comes with the test extra")
    tracker = qubd.ComplexityTracker(workers.transformer(), clip=99.9)
    for step in (0, 2):
        tracker.log(step)
    want = [without_time(e) for e in tracker.entries]
    for rank_results in results_of(worlds, 2, "trainer_callback"):
        assert [without_time(e) for e in rank_results["entries"]] == want
    log = json.loads((worlds(2)[1] / "callback.json").read_text())
    assert [without_time(e) for e in log["entries"]] == want


def without_time(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "time"}


def test_range_too_wide_for_float32_is_quantised_in_float64_as_one_process(worlds):
    """FSDP2 shards of tensors whose max - min overflows float32: the whole report, the note included."""
    for clip in (None, 99.9):
        want = workers.report_dict(qubd.score(workers.wide_transformer(), bits=8, clip=clip))
        wide = {t["name"] for t in want["tensors"] if t.get("note") == FLOAT64_GRID}
        assert "blocks.1.up.weight" in wide and ("blocks.0.down.weight" in wide) == (clip is None)
        for rank_results in results_of(worlds, 2, "wide"):
            assert rank_results[str(clip)] == want, clip


def test_tensor_parallel_shard1_equals_one_process(worlds):
    for bits in (1, 8):
        want = workers.report_dict(single_process(99.9, bits))
        for rank_results in results_of(worlds, 3, "shard1"):
            assert rank_results[f"{bits}"] == want, bits


def test_ddp_replicated_tensors_split_over_ranks_equal_one_process(worlds):
    """The whole JSON report, baselines (sampled, or closed-form with z-scores) and notes included."""
    shuffle = workers.report_dict(
        qubd.score(workers.transformer(), bits=8, clip=99.9, baseline="shuffle", repeats=2)
    )
    expected = workers.report_dict(qubd.score(workers.transformer()))
    assert_has_expected_baseline_and_note(expected)
    for rank_results in results_of(worlds, 2, "ddp"):
        assert rank_results["source"] == "TinyTransformer"  # DDP's module, under its own names
        assert rank_results["shuffle"] == shuffle
        assert rank_results["expected"] == expected


def test_faults_reach_every_rank(worlds):
    results = results_of(worlds, 2, "faults")
    for rank_results in results:
        assert "ranks disagree on the options" in rank_results["options"]
        for baseline in ("shuffle", "reinit"):
            assert f"sharded over ranks: the '{baseline}' baseline" in rank_results[baseline]
            assert "baseline='expected' (the default) or 'none'" in rank_results[baseline]
        assert "not supported on a model scored by every rank" in rank_results["reference"]
        assert "blocks.1.up.weight" in rank_results["nonfinite"] and "1 NaN/Inf" in rank_results["nonfinite"]
    assert len({r["nonfinite"] for r in results}) == 1 and len({r["options"] for r in results}) == 1


def test_balance_spreads_by_size():
    owners = balance([10, 1, 7, 3, 3, 9], 3)
    loads = [sum(s for s, o in zip([10, 1, 7, 3, 3, 9], owners, strict=True) if o == r) for r in range(3)]
    assert sorted(loads) == [10, 11, 12]
    assert balance([], 2) == []


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


def test_multiprocess_cli_score_equals_single_process_json(worlds):
    results, tmp = worlds(2)
    assert [r["cli"]["status"] for r in results] == [0, 0]
    want = qubd.score(str(tmp / "model.safetensors"), bits=8, clip=99.9).to_dict()  # CLI defaults
    assert want["baseline"] == "expected" and want["total"]["baseline_std"] is not None
    got = json.loads((tmp / "multi.json").read_text())
    assert without_timing(got) == without_timing(json.loads(json.dumps(want)))


def test_python_m_qubd_runs_the_command(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["qubd", "--help"])
    with pytest.raises(SystemExit) as exit_:
        run_python_m_qubd()
    assert exit_.value.code == 0 and "score" in capsys.readouterr().out


def test_reference_under_torchrun_is_refused(worlds):
    """Every rank exits 2; rank 0 alone prints the error (every rank meets it alike)."""
    results, tmp = worlds(2)
    first, *others = results_of(worlds, 2, "cli_reference")
    assert [r["status"] for r in (first, *others)] == [2, 2]
    assert "--reference is not supported under torchrun" in first["stderr"]
    assert [r["stderr"] for r in others] == [""]
    assert not (tmp / "ref.json").exists()


def test_failing_rank_stops_every_rank_without_report(worlds):
    """One rank's bad tensor fails every rank (status 1), reported once, by rank 0."""
    first, *others = results_of(worlds, 3, "cli_fault")
    assert [r["status"] for r in (first, *others)] == [1, 1, 1]
    errors = first["stderr"].strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("qubd: error: rank ")
    assert "tensor 'layer3.weight' (in " in errors[0] and "bad.safetensors) has 1 NaN/Inf" in errors[0]
    assert [r["stderr"] for r in others] == ["", ""]
    assert not (worlds(3)[1] / "out.json").exists()


def test_an_unexpected_error_is_printed_by_each_rank_naming_it(worlds):
    for rank, result in enumerate(results_of(worlds, 2, "cli_unexpected")):
        assert result["status"] == 1
        assert result["stderr"] == f"qubd: error: rank {rank}: RuntimeError: boom\n"
