"""Conv-kernel layouts (``qubd.layouts``, the authors' ``flatten_ablation.py`` views) and the tiled
manifold (``qubd.report.manifold``, their ``get_tiled_manifold``): each view against index arithmetic
written out cell by cell, scores against pybdm on independently built matrices, and the option through
``qubd.score``, the JSON report and ``qubd score``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import qubd
from qubd import layouts, ops
from qubd.report.errors import ReportError
from qubd.report.manifold import manifold_bdm, tiled_manifold
from qubd.report.options import ScoreOptions
from tests.oracles import paper_quantize, paper_qubd, pybdm_bdm
from tests.test_cli import assert_one_line_error, run

C_OUT, C_IN, H, W = 5, 3, 2, 4


def kernel(shape=(C_OUT, C_IN, H, W)) -> torch.Tensor:
    """Distinct values, so that a view is determined by where each value lands."""
    return torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape)


def by_cells(rows: int, cols: int, place) -> torch.Tensor:
    """The matrix with ``w[o, c, i, j]`` at ``place(o, c, i, j)``, filled one cell at a time."""
    w = kernel()
    m = torch.full((rows, cols), float("nan"))
    for o in range(C_OUT):
        for c in range(C_IN):
            for i in range(H):
                for j in range(W):
                    m[place(o, c, i, j)] = w[o, c, i, j]
    assert not m.isnan().any()
    return m


EXPECTED_VIEWS = {
    "default": lambda: by_cells(C_OUT, C_IN * H * W, lambda o, c, i, j: (o, c * H * W + i * W + j)),
    "in_channel_rows": lambda: by_cells(C_IN, C_OUT * H * W, lambda o, c, i, j: (c, o * H * W + i * W + j)),
    "channels_last": lambda: by_cells(
        C_OUT, H * W * C_IN, lambda o, c, i, j: (o, i * W * C_IN + j * C_IN + c)
    ),
    "mosaic": lambda: by_cells(C_OUT * H, C_IN * W, lambda o, c, i, j: (o * H + i, c * W + j)),
    # 120 = 10 x 12: the row-major values, 12 to a row
    "square": lambda: kernel().reshape(-1).reshape(10, 12),
}


@pytest.mark.parametrize("layout", sorted(layouts.LAYOUTS))
def test_each_layout_places_every_value_where_the_authors_put_it(layout):
    expected = EXPECTED_VIEWS[layout]()
    view = layouts.arrange(kernel(), layout).flatten(1)
    assert torch.equal(view, expected)
    assert layouts.arranged_shape((C_OUT, C_IN, H, W), layout) == tuple(expected.shape)


@pytest.mark.parametrize("n", [1, 2, 7, 12, 36, 97, 120, 4608, 1000003])
def test_square_is_the_closest_to_square_factorisation(n):
    rows, cols = layouts.arranged_shape((n, 1, 1, 1), "square")
    best = min((n // d - d, d) for d in range(1, n + 1) if n % d == 0 and d * d <= n)
    assert (rows, cols) == (best[1], n // best[1])


@pytest.mark.parametrize("shape", [(6, 8), (6, 4, 5), (2, 3, 4, 5, 6)])
def test_only_conv_kernels_are_rearranged(shape):
    w = torch.randn(shape)
    for layout in layouts.LAYOUTS:
        assert layouts.arrange(w, layout) is w


def test_unknown_layout_names_the_choices():
    with pytest.raises(
        ValueError, match="default, in_channel_rows, channels_last, square, mosaic; got 'rows'"
    ):
        layouts.arrange(kernel(), "rows")
    with pytest.raises(ReportError, match="layout must be one of default, in_channel_rows.*'rows'"):
        ScoreOptions(layout="rows")
    with pytest.raises(ReportError, match="layout must be one of"):
        qubd.score({"w": kernel()}, layout="rows")


def conv_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "a.weight": torch.randn(24, 8, 3, 3, generator=g),
        "b.weight": torch.randn(16, 6, 5, 5, generator=g),
    }


@pytest.mark.parametrize("layout", ["mosaic", "in_channel_rows"])
def test_score_under_a_layout_is_pybdm_on_the_view_built_by_hand(layout):
    weights = conv_weights()
    report = qubd.score(weights, bits=4, clip=None, baseline="none", layout=layout)
    c_out, c_in, h, w = weights["a.weight"].shape
    a = weights["a.weight"].numpy()
    if layout == "mosaic":  # cell (o*h + i, c*w + j) holds a[o, c, i, j]
        view = np.empty((c_out * h, c_in * w), dtype=np.float32)
        for o, c, i, j in np.ndindex(a.shape):
            view[o * h + i, c * w + j] = a[o, c, i, j]
    else:  # cell (c, o*h*w + i*w + j) holds a[o, c, i, j]
        view = np.empty((c_in, c_out * h * w), dtype=np.float32)
        for o, c, i, j in np.ndindex(a.shape):
            view[c, o * h * w + i * w + j] = a[o, c, i, j]
    scored = {t.name: t.planes for t in report.scored}
    np.testing.assert_allclose(scored["a.weight"], paper_qubd(torch.from_numpy(view), 4, None), rtol=1e-12)
    assert report.options.layout == layout


def test_default_layout_keeps_the_numbers():
    weights = conv_weights()
    for report in (qubd.score(weights, bits=4), qubd.score(weights, bits=4, layout="default")):
        for t in report.scored:  # pybdm on the kernel flattened after its first dimension
            np.testing.assert_allclose(t.planes, paper_qubd(weights[t.name], 4, 99.9), rtol=1e-12)


def test_the_baseline_is_taken_on_the_same_view():
    weights, reference = conv_weights(0), conv_weights(1)
    report = qubd.score(weights, bits=3, clip=None, reference=reference, layout="channels_last")
    for t in report.scored:
        view = reference[t.name].permute(0, 2, 3, 1).reshape(t.shape[0], -1)
        assert t.baseline_runs[0]["bdm"] == pytest.approx(paper_qubd(view, 3, None).tolist(), rel=1e-12)
        assert t.summary().ratio[0] == pytest.approx(100 * t.planes[0] / t.baseline_runs[0]["bdm"][0])
    shuffled = qubd.score(weights, bits=3, baseline="shuffle", layout="mosaic")
    assert all(len(t.baseline_runs) == 1 for t in shuffled.scored)
    # the closed form is taken on the view's shape: 16 x 150 (148 blocks) and 80 x 30 (140 blocks)
    b = weights["b.weight"]
    by_hand = b.permute(0, 2, 1, 3).reshape(16 * 5, 6 * 5)  # cell (o*5 + i, c*5 + j) = b[o, c, i, j]
    mosaic = qubd.score({"b": b}, bits=3, layout="mosaic").scored[0].expected["bdm"]
    assert mosaic == qubd.score({"b": by_hand}, bits=3).scored[0].expected["bdm"]
    assert mosaic != qubd.score({"b": b}, bits=3).scored[0].expected["bdm"]


def test_a_view_with_a_side_under_4_is_skipped_with_the_reason():
    report = qubd.score(
        {"stem.weight": torch.randn(16, 1, 3, 3), "b.weight": torch.randn(8, 8, 3, 3)}, layout="mosaic"
    )
    stem = report.tensors[0]
    assert stem.skipped == "side < 4 (a 48x3 matrix, layout mosaic)"
    assert report.tensors[1].skipped is None
    with pytest.raises(ReportError, match="no tensor could be scored|no eligible"):
        qubd.score({"stem.weight": torch.randn(16, 1, 3, 3)}, layout="in_channel_rows")


def image_by_loops(codes: np.ndarray, bits: int, grid: tuple[int, int]) -> np.ndarray:
    """The authors' manifold written out: bit b of code (r, c) at (r*tr + b // tc, c*tc + b % tc)."""
    tr, tc = grid
    rows, cols = codes.shape
    image = np.full((rows * tr, cols * tc), -1, dtype=np.int64)
    for r in range(rows):
        for c in range(cols):
            for b in range(bits):
                image[r * tr + b // tc, c * tc + b % tc] = (codes[r, c] >> b) & 1
    assert (image >= 0).all()
    return image


# the authors' tile grids: 2 bits (2, 1), 4 bits (2, 2), 8 bits (4, 2), otherwise (bits, 1)
@pytest.mark.parametrize(
    ("bits", "grid"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 1)), (4, (2, 2)), (8, (4, 2)), (12, (12, 1))]
)
def test_tiled_manifold_interleaves_the_planes(bits, grid):
    g = torch.Generator().manual_seed(bits)
    codes = torch.randint(0, 2**bits, (6, 5), generator=g, dtype=torch.int32)
    codes = codes.to(torch.uint8) if bits <= 8 else codes
    image = tiled_manifold(codes, bits)
    assert image.dtype == torch.uint8
    np.testing.assert_array_equal(image.numpy(), image_by_loops(codes.numpy().astype(np.int64), bits, grid))


@pytest.mark.parametrize("bits", [4, 8])
def test_manifold_bdm_is_pybdm_on_the_interleaved_image(bits):
    w = torch.randn(20, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    codes = paper_quantize(w, bits, 99.9)
    grid = {4: (2, 2), 8: (4, 2)}[bits]
    expected = pybdm_bdm(image_by_loops(codes, bits, grid))
    assert manifold_bdm(w, bits, 99.9) == pytest.approx(expected, rel=1e-12)
    report = qubd.score({"w": w}, bits=bits, manifold=True, layout="default")
    assert report.scored[0].values["manifold"] == [pytest.approx(expected, rel=1e-12)]
    # under a layout the manifold is built on the view
    view = layouts.arrange(w, "square")
    squared = qubd.score({"w": w}, bits=bits, manifold=True, layout="square").scored[0]
    image = image_by_loops(paper_quantize(view, bits, 99.9), bits, grid)
    assert squared.values["manifold"][0] == pytest.approx(pybdm_bdm(image), rel=1e-12)


def test_manifold_baselines():
    weights = conv_weights()
    # no closed form for the manifold: against "expected" it carries no baseline
    expected = qubd.score(weights, bits=4, manifold=True)
    assert expected.summary("manifold").baseline is None
    shuffled = qubd.score(weights, bits=4, manifold=True, baseline="shuffle", repeats=2)
    for t in shuffled.scored:
        assert len(t.baseline_runs) == 2 and all(run["manifold"][0] > 0 for run in t.baseline_runs)
    ratio = shuffled.summary("manifold").ratio[0]
    total = sum(t.values["manifold"][0] for t in shuffled.scored)
    runs = [sum(t.baseline_runs[k]["manifold"][0] for t in shuffled.scored) for k in range(2)]
    assert ratio == pytest.approx(100 * total / np.mean(runs))


def test_layout_and_manifold_round_trip_through_json_and_old_reports_load():
    report = qubd.score(conv_weights(), bits=4, baseline="shuffle", layout="mosaic", manifold=True)
    data = json.loads(report.to_json())
    assert data["layout"] == "mosaic" and "manifold" in data["measures"]
    assert data["manifold"]["ratio"] == pytest.approx(report.summary("manifold").ratio[0])
    again = qubd.Report.from_dict(data)
    assert again.options == report.options
    assert again.to_dict() | {"seconds": 0} == data | {"seconds": 0}
    old = json.loads(qubd.score(conv_weights(), bits=4).to_json())
    del old["layout"]  # a report written before the option existed
    assert qubd.Report.from_dict(old).options.layout == "default"


def test_cli_layout_and_manifold(capsys, tmp_path):
    path = tmp_path / "conv.safetensors"
    weights = conv_weights()
    save_file(weights, path)
    out = tmp_path / "r.json"
    status, _, err = run(
        capsys, "score", str(path), "--layout", "mosaic", "--manifold", "--quiet", "--json", str(out)
    )
    assert status == 0, err
    data = json.loads(out.read_text())
    assert data["layout"] == "mosaic" and data["measures"] == ["bdm", "manifold"]
    expected = qubd.score(weights, layout="mosaic", manifold=True)
    assert [t["planes"] for t in data["tensors"]] == [t.planes for t in expected.scored]
    status, table, err = run(
        capsys, "score", str(path), "--layout", "mosaic", "--manifold", "--baseline", "shuffle"
    )
    assert status == 0, err
    words = " ".join(table.split())  # the terminal table wraps long lines
    assert "layout mosaic" in words and "Tiled manifold BDM:" in words
    status, _, err = run(capsys, "score", str(path), "--layout", "rows")
    assert_one_line_error(status, err, "--layout", "'rows'", "mosaic")
    status, _, err = run(
        capsys, "series", str(path), "--json", str(tmp_path / "log.json"), "--layout", "square"
    )
    assert_one_line_error(status, err, "--layout", "not part of a training log")
    assert not (tmp_path / "log.json").exists()


def test_a_training_log_refuses_a_layout(tmp_path):
    model = torch.nn.Conv2d(8, 8, 3)
    with pytest.raises(ReportError, match="training log records the default layout"):
        qubd.ComplexityTracker(model, tmp_path / "log.json", options=ScoreOptions(layout="mosaic")).step(0)
    assert not (tmp_path / "log.json").exists()


def test_ops_score_a_view(tmp_path):
    """The ops take the view as they take any 2-D tensor (the layout is not part of an op)."""
    w = conv_weights()["b.weight"]
    view = layouts.arrange(w, "mosaic")
    np.testing.assert_allclose(ops.qubd(view, 4).numpy(), paper_qubd(view.contiguous(), 4, None), rtol=1e-12)
