"""The reference baseline: each tensor against its namesake in another checkpoint; ratios against
ratios computed here from ``qubd.ops.qubd`` on both tensors, unpaired names listed, streaming."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from qubd import ops
from qubd.checkpoints import TensorEntry, TensorSource
from qubd.cli import main
from qubd.report import Report, ReportError, ScoreOptions, score, score_source, scoring
from qubd.report.table import print_report


def _weights(seed: int, **shapes: tuple[int, ...]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(*shape, generator=g) for name, shape in shapes.items()}


def _independent_ratio(w: torch.Tensor, ref: torch.Tensor, bits: int, clip: float | None) -> list[float]:
    mine, theirs = ops.qubd(w, bits, clip), ops.qubd(ref, bits, clip)
    return (100.0 * mine / theirs).tolist() + [100.0 * float(mine.sum() / theirs.sum())]


@pytest.mark.parametrize("clip", [99.9, None])
def test_ratios_equal_ratios_of_the_two_tensors(tmp_path, clip):
    shapes = {"a.weight": (32, 24), "b.weight": (8, 3, 3, 3), "c.bias": (8,)}
    trained, initial = _weights(0, **shapes), _weights(1, **shapes)
    trained["a.weight"] = torch.linspace(-1, 1, 32 * 24).reshape(32, 24)
    save_file(trained, tmp_path / "trained.safetensors")
    save_file(initial, tmp_path / "initial.safetensors")
    report = score(
        tmp_path / "trained.safetensors", bits=6, clip=clip, reference=tmp_path / "initial.safetensors"
    )
    assert report.options.baseline == "reference" and report.reference == str(
        tmp_path / "initial.safetensors"
    )
    for t in report.scored:
        expected = _independent_ratio(trained[t.name], initial[t.name], 6, clip)
        assert t.summary().ratio + t.total().ratio == pytest.approx(expected, rel=1e-12)
    both = [(trained[n], initial[n]) for n in ("a.weight", "b.weight")]
    total = sum(float(ops.qubd(w, 6, clip).sum()) for w, _ in both)
    baseline = sum(float(ops.qubd(r, 6, clip).sum()) for _, r in both)
    assert report.total.ratio == pytest.approx(100.0 * total / baseline, rel=1e-12)
    assert report.planes[0].ratio != pytest.approx(100.0)  # the baseline is not the tensor itself


def test_module_against_state_dict_and_module():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
    initial = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8)).requires_grad_(False)
    from_module = score(model, bits=4, reference=initial)
    from_state = score(model, bits=4, reference=initial.state_dict())
    assert [t.name for t in from_module.scored] == ["0.weight", "2.weight"]  # a frozen reference pairs too
    for t in from_module.scored:
        ref = initial.get_submodule(t.name.split(".")[0]).weight
        assert t.summary().ratio == pytest.approx(
            _independent_ratio(model.get_parameter(t.name), ref, 4, 99.9)[:4]
        )
    assert from_module.total.ratio == from_state.total.ratio
    assert score(model, bits=4, reference=model).total.ratio == 100.0


def test_unpaired_tensors_are_listed_with_the_reason(tmp_path):
    checkpoint = _weights(0, **{"same.weight": (16, 16), "other.weight": (16, 8), "mine.weight": (8, 8)})
    reference = _weights(1, **{"same.weight": (16, 16), "other.weight": (8, 16), "theirs.weight": (8, 8)})
    reference["ints.weight"] = torch.zeros(8, 8, dtype=torch.int32)
    checkpoint["ints.weight"] = torch.randn(8, 8)
    reference["bias"] = torch.zeros(8)  # 1-D in the reference only: would not be scored, not listed
    report = score(checkpoint, bits=4, reference=reference)
    reasons = {t.name: t.skipped for t in report.tensors}
    assert reasons == {
        "same.weight": None,
        "other.weight": "shape differs from the reference (16x8 here, 8x16 there)",
        "mine.weight": "not in the reference",
        "ints.weight": "not floating point in the reference (int32)",
        "theirs.weight": "only in the reference",
    }
    data = json.loads(report.to_json())
    assert data["counts"]["skipped_by_reason"] == {
        "shape differs from the reference": 1,
        "not in the reference": 1,
        "not floating point in the reference": 1,
        "only in the reference": 1,
    }
    assert data["reference"] == "state dict"
    again = Report.from_dict(data)
    assert again.reference == "state dict" and again.total == report.total
    from rich.console import Console

    console = Console(record=True, width=200)
    print_report(report, console)
    text = console.export_text()
    assert "baseline reference (state dict)" in text and "1 only in the reference" in text
    assert (
        "Not paired with the reference: other.weight (shape differs from the reference (16x8 here, " in text
    )
    assert "theirs.weight (only in the reference)." in text


def test_nothing_in_common_is_an_error():
    with pytest.raises(
        ReportError, match=r"no tensor in common with the reference.*1 only in the checkpoint, e\.g\. 'a'"
    ):
        score(_weights(0, a=(8, 8)), reference=_weights(0, b=(8, 8)))
    with pytest.raises(ReportError, match="1 with another shape, e.g. 'a'"):
        score(_weights(0, a=(8, 8)), reference=_weights(0, a=(8, 12)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": "reference"}, "needs a reference checkpoint"),
        ({"baseline": "none", "reference": {}}, "cannot be combined with baseline 'none'"),
        ({"repeats": 2, "reference": {"w": torch.randn(8, 8)}}, "repeats must be 1"),
    ],
)
def test_contradicting_options_are_errors(kwargs, message):
    with pytest.raises(ReportError, match=message):
        score({"w": torch.randn(8, 8)}, **kwargs)


def test_nonfinite_reference_tensor_is_named():
    reference = {"w": torch.randn(8, 8)}
    reference["w"][0, 0] = float("nan")
    with pytest.raises(ReportError, match="reference's tensor 'w' has 1 NaN/Inf"):
        score({"w": torch.randn(8, 8)}, reference=reference)


def test_reference_streams_with_its_partner(monkeypatch):
    """Each reference tensor is read when its partner is scored, not all up front."""
    monkeypatch.setattr(scoring, "GROUP_TENSORS", 1)
    reads: list[str] = []

    def source(prefix: str, seed: int) -> TensorSource:
        tensors = _weights(seed, **{f"t{i}": (8, 8) for i in range(6)})

        def loader(name: str):
            return lambda: reads.append(f"{prefix}{name}") or tensors[name]

        return TensorSource(prefix, [TensorEntry(n, (8, 8), "float32", loader(n)) for n in tensors])

    report = score_source(
        source("ckpt:", 0), ScoreOptions(bits=4, baseline="reference"), reference=source("ref:", 1)
    )
    assert len(report.scored) == 6 and reads.count("ref:t0") == 1
    for i in range(4):  # at most one checkpoint tensor is read ahead of the one being scored
        assert reads.index(f"ref:t{i}") < reads.index(f"ckpt:t{i + 2}")


def test_cli_reference(capsys, tmp_path):
    checkpoint, reference = tmp_path / "step100.safetensors", tmp_path / "step0.safetensors"
    trained, initial = _weights(0, w=(16, 16), v=(8, 8)), _weights(1, w=(16, 16))
    save_file(trained, checkpoint)
    save_file(initial, reference)
    out = tmp_path / "r.json"
    status = main(
        ["score", str(checkpoint), "--reference", str(reference), "--bits", "4", "--json", str(out)]
    )
    printed = capsys.readouterr().out
    assert status == 0 and f"baseline reference ({reference})" in " ".join(printed.split())
    data = json.loads(out.read_text())
    assert data["baseline"] == "reference" and data["reference"] == str(reference)
    assert {t["name"]: t["skipped"] for t in data["tensors"]} == {"w": None, "v": "not in the reference"}
    assert data["total"]["ratio"] == pytest.approx(
        _independent_ratio(trained["w"], initial["w"], 4, 99.9)[-1]
    )
    with pytest.raises(SystemExit) as exit_:
        main(["score", str(checkpoint), "--reference", str(tmp_path / "missing")])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code != 0 and err.startswith("qubd: error: ") and "missing" in err and "\n" not in err
