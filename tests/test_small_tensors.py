"""Checkpoints of many small tensors (issue 16, per-tensor overhead): the chunked safetensors reader,
the report's per-tensor fields built for all tensors at once, and the collector pause give what
scoring and summarising each tensor on its own gives, bit for bit; hostile files still fail with one
line naming the file."""

from __future__ import annotations

import gc
import json
import math
import os
import struct
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import qubd
from qubd import ops
from qubd.checkpoints import CheckpointError, open_source, spans, stream_tensors
from qubd.report.advice import advise
from qubd.report.baselines import ExpectedBaseline, expected_baseline
from qubd.report.scores import TensorScore, plane_scores
from qubd.report.summary import float_rows
from qubd.report.tensor_records import bdm_fields
from tests.test_cli import assert_one_line_error, run


def _mixed(tmp_path, seed: int = 0):
    """A file of runs of small tensors (several dtypes and shapes), tensors that are skipped (1-D,
    integer, a side < 4) between them, a conv kernel, a constant tensor, and one large enough to
    be read through the memory map."""
    g = torch.Generator().manual_seed(seed)
    tensors = {f"small.{i:03d}.weight": torch.randn(4, 4, generator=g) for i in range(150)}
    tensors |= {f"half.{i}.weight": torch.randn(8, 5, generator=g).half() for i in range(7)}
    tensors |= {f"brain.{i}.weight": torch.randn(4, 12, generator=g).bfloat16() for i in range(7)}
    tensors |= {f"double.{i}.weight": torch.randn(6, 6, generator=g).double() for i in range(3)}
    tensors |= {f"small.{i:03d}.bias": torch.randn(4, generator=g) for i in range(0, 150, 7)}
    tensors["steps"] = torch.arange(20, dtype=torch.int64).reshape(4, 5)
    tensors["thin.weight"] = torch.randn(3, 8, generator=g)
    tensors["conv.weight"] = torch.randn(8, 2, 3, 3, generator=g) * 0.1
    tensors["flat.weight"] = torch.full((4, 4), 0.25)
    tensors["large.weight"] = torch.randn(160, 120, generator=g)  # > INLINE_ELEMENTS
    path = tmp_path / "mixed.safetensors"
    save_file(tensors, path)
    return path


def _plane_ones(w: torch.Tensor, bits: int, clip: float | None) -> list[int]:
    codes = ops.quantize(w, bits, clip).flatten(1).to(torch.int64)
    return [int(((codes >> p) & 1).sum()) for p in range(bits)]


def _alone(name: str, w: torch.Tensor, bits: int, clip: float | None) -> dict:
    """The JSON entry of one tensor, computed on its own: the op on this tensor alone, the closed
    form from its planes' ones counted here, then one tensor's Summary, total and advice."""
    score = TensorScore(name, tuple(w.shape), str(w.dtype).removeprefix("torch."))
    score.values["bdm"] = ops.qubd(w, bits, clip).tolist()
    score.expected["bdm"] = expected_baseline(w.shape, _plane_ones(w, bits, clip))
    summary, total = score.summary(), plane_scores(score.total(), total=True)[0]
    advice = advise(summary, 1.0)
    return {
        "name": name,
        "shape": list(w.shape),
        "dtype": score.dtype,
        "skipped": None,
        "note": "span below 1e-8: all codes 0" if name == "flat.weight" else None,
        "planes": summary.values,
        "baseline_planes": summary.baseline,
        "baseline_planes_std": summary.baseline_std,
        "ratios": summary.ratio,
        "z": summary.z,
        "baseline_runs": [],
        "total": {
            "bdm": total.bdm,
            "baseline": total.baseline,
            "baseline_std": total.baseline_std,
            "ratio": total.ratio,
            "z": total.z,
        },
        "suggested_bits": advice.suggested_bits,
        "planes_below_baseline": advice.planes_below,
    }


@pytest.mark.parametrize(("bits", "clip"), [(8, 99.9), (3, None), (12, 99.0)])
def test_a_checkpoint_of_small_tensors_reports_what_each_tensor_alone_gives(tmp_path, bits, clip):
    path = _mixed(tmp_path)
    report = json.loads(qubd.score(path, bits=bits, clip=clip).to_json())
    tensors = load_file(path)  # the library's own reader
    entries = {t["name"]: t for t in report["tensors"]}
    assert list(entries) == sorted(tensors)
    for name, w in tensors.items():
        entry = entries[name]
        if w.ndim < 2 or not w.is_floating_point() or min(w.shape[0], w[0].numel()) < 4:
            assert entry["skipped"] is not None and entry["planes"] is None, name
            continue
        assert entry == json.loads(json.dumps(_alone(name, w, bits, clip))), name


def test_the_chunked_reader_gives_the_librarys_tensors(tmp_path, monkeypatch):
    path = _mixed(tmp_path, seed=1)
    expected = load_file(path)
    monkeypatch.setattr(spans, "CHUNK_BYTES", 300)  # many chunks, some of one tensor
    with open_source(path) as source:
        assert all(e.span is not None for e in source.entries)
        got = dict(stream_tensors(source.entries, lambda e: e.name != "steps", torch.device("cpu")))
    for entry, tensor in got.items():
        if entry.name == "steps":
            assert tensor is None
            continue
        want = expected[entry.name]
        assert tensor.dtype == want.dtype and tensor.shape == want.shape, entry.name
        assert torch.equal(tensor.view(-1).view(torch.uint8), want.view(-1).view(torch.uint8)), entry.name


def _write(path, header: dict, data: bytes) -> None:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def test_a_misaligned_tensor_is_read_as_the_library_reads_it(tmp_path):
    """The format does not require aligned offsets: a float32 tensor at byte 2 is copied, not viewed."""
    g = torch.Generator().manual_seed(2)
    w = torch.randn(4, 4, generator=g)
    header = {
        "a.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [2, 66]},
        "pad": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
        "b.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [66, 130]},
    }
    path = tmp_path / "odd.safetensors"
    _write(path, header, b"\0\0" + w.numpy().tobytes() + (w * 2).numpy().tobytes())
    report = qubd.score(path)
    scored = {t.name: t.planes for t in report.scored}
    assert scored == {
        "a.weight": ops.qubd(w, 8, 99.9).tolist(),
        "b.weight": ops.qubd(w * 2, 8, 99.9).tolist(),
    }


def _valid_header() -> dict:
    return {
        "a.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]},
        "b.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [64, 128]},
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("data_offsets", [64, 192]),  # past the end of the file
        ("data_offsets", [32, 96]),  # overlapping a.weight
        ("shape", [4, 5]),  # 80 bytes of float32 in a range of 64
        ("dtype", "F64"),
    ],
)
def test_a_hostile_header_is_one_line_naming_the_file(tmp_path, capsys, field, value):
    header = _valid_header()
    header["b.weight"][field] = value
    path = tmp_path / "bad.safetensors"
    _write(path, header, bytes(128))
    status, _, err = run(capsys, "score", str(path), "--quiet")
    assert_one_line_error(status, err, str(path))
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        open_source(path)


class _Accepted:
    """What ``safe_open`` returns for a file it accepted: here, a stand-in for a file that was valid
    when the library read its header and was swapped before qubd read it again."""

    def __init__(self, names):
        self._names = names

    def keys(self):
        return self._names

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("data_offsets", [0, 10**12]),  # a huge range: must not become a huge read
        ("data_offsets", [64, 192]),  # past the end of the file
        ("shape", [4, 5]),  # 80 bytes of float32 in a range of 64
        ("shape", "four"),
        ("data_offsets", None),
    ],
)
def test_a_header_swapped_after_validation_is_refused(tmp_path, monkeypatch, field, value):
    from qubd.checkpoints import safetensors_source

    header = _valid_header()
    header["b.weight"][field] = value
    path = tmp_path / "swapped.safetensors"
    _write(path, header, bytes(128))
    monkeypatch.setattr(safetensors_source, "_open", lambda p: _Accepted(list(header)))
    with pytest.raises(CheckpointError, match=rf"^{path}: tensor 'b\.weight': "):
        safetensors_source.safetensors_entries(path, safetensors_source.SafetensorsReader())


def test_a_header_longer_than_its_file_is_refused(tmp_path, monkeypatch):
    from qubd.checkpoints import safetensors_source

    path = tmp_path / "long.safetensors"
    path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    monkeypatch.setattr(safetensors_source, "_open", lambda p: _Accepted([]))
    with pytest.raises(CheckpointError, match="longer than the file"):
        safetensors_source.safetensors_entries(path, safetensors_source.SafetensorsReader())


def test_a_file_truncated_after_it_was_listed_names_the_file_and_tensor(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({f"w{i}": torch.randn(4, 4) for i in range(10)}, path)
    with open_source(path) as source:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(size - 100)  # w8's data and w9's are cut
        with pytest.raises(CheckpointError, match=f"{path}: cannot read tensor 'w8'"):
            list(stream_tensors(source.entries, lambda e: True, torch.device("cpu")))


def test_the_collector_is_restored_after_a_score_and_after_a_failure(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.randn(4, 4), "nan": torch.full((4, 4), math.nan)}, path)
    assert gc.isenabled()
    qubd.score(path, include="w")
    assert gc.isenabled()
    with pytest.raises(qubd.report.ReportError, match="NaN"):
        qubd.score(path)
    assert gc.isenabled()
    gc.disable()
    try:
        qubd.score(path, include="w")
        assert not gc.isenabled()  # a collector the caller paused stays paused
    finally:
        gc.enable()


def closed_form_draws(planes: int, count: int) -> Iterator[tuple[int, list[float], list[float], list[float]]]:
    """(i, values, means, stds) of ``count`` tensors' closed-form baselines, seeded by ``planes``:
    some stds and means zero (no ratio, no z), values up to a few stds below their means (advice)."""
    g = torch.Generator().manual_seed(planes)
    for i in range(count):
        means = (torch.rand(planes, generator=g, dtype=torch.float64) * 40).tolist()
        stds = (torch.rand(planes, generator=g, dtype=torch.float64) * 3).tolist()
        noise = (torch.randn(planes, generator=g, dtype=torch.float64) * 6).tolist()
        values = [m + s * e for m, s, e in zip(means, stds, noise, strict=True)]
        if i % 7 == 0:
            stds[i % planes] = 0.0
        if i % 11 == 0:
            means[(i + 1) % planes] = 0.0
        yield i, values, means, stds


def _score(values: list[float], means: list[float], stds: list[float]) -> TensorScore:
    score = TensorScore("t", (4, 4), "float32")
    score.values["bdm"] = values
    score.expected["bdm"] = ExpectedBaseline(means, stds)
    return score


@pytest.mark.parametrize("planes", [1, 5, 8, 9, 16])
def test_the_fields_of_many_tensors_are_each_tensors_own(planes):
    """Against one tensor's Summary at a time, including zero means and stds (no ratio, no z), planes
    far below their baseline (advice) and more planes than numpy sums one at a time (8)."""
    tensors = [_score(values, means, stds) for _, values, means, stds in closed_form_draws(planes, 300)]
    got = bdm_fields(tensors, margin=1.0)
    for score, fields in zip(tensors, got, strict=True):
        summary, total = score.summary(), plane_scores(score.total(), total=True)[0]
        advice = advise(summary, 1.0)
        assert fields["planes"] == summary.values
        assert fields["baseline_planes"] == summary.baseline
        assert fields["baseline_planes_std"] == summary.baseline_std
        assert fields["ratios"] == summary.ratio
        assert fields["z"] == summary.z
        assert fields["total"] == {
            "bdm": total.bdm,
            "baseline": total.baseline,
            "baseline_std": total.baseline_std,
            "ratio": total.ratio,
            "z": total.z,
        }
        assert (fields["suggested_bits"], fields["planes_below_baseline"]) == (
            advice.suggested_bits,
            advice.planes_below,
        )
    assert any(f["planes_below_baseline"] for f in got) and any(None in f["z"] for f in got)


def test_a_file_swapped_for_a_fifo_after_it_was_listed_is_refused_without_blocking(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.randn(4, 4)}, path)
    with open_source(path) as source:
        path.unlink()
        os.mkfifo(path)
        with pytest.raises(CheckpointError, match="no longer a regular file"):
            list(stream_tensors(source.entries, lambda e: True, torch.device("cpu")))


def _cyclic_garbage(path, **options) -> list:
    """What only the cyclic collector would free after scoring ``path`` and writing its JSON."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        qubd.score(path, **options).to_json()
        gc.collect()
        return list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.mark.parametrize("options", [{}, {"baseline": "shuffle", "repeats": 2}])
def test_pausing_the_collector_holds_back_no_tensor_and_nothing_per_tensor(tmp_path, options):
    """Scoring makes no reference cycles per tensor (so none waits, holding memory, while the
    collector is paused): the cyclic garbage of 40 and of 400 tensors is the same few objects."""
    g = torch.Generator().manual_seed(3)
    sizes = {}
    for count in (40, 400):
        path = tmp_path / f"m{count}.safetensors"
        tensors = {f"s{i}": torch.randn(4, 4, generator=g) for i in range(count)}
        save_file(tensors | {"big": torch.randn(256, 128, generator=g)}, path)
        garbage = _cyclic_garbage(path, **options)
        assert not [o for o in garbage if isinstance(o, torch.Tensor)]
        sizes[count] = len(garbage)
    assert sizes[40] == sizes[400], sizes


def test_rows_of_floats_are_the_array_numpy_makes_of_them():
    g = torch.Generator().manual_seed(0)
    rows = (torch.randn(500, 9, generator=g, dtype=torch.float64) * 1e3).tolist()
    rows[7][3] = 5  # an int among the floats
    got = float_rows(rows)
    assert got.dtype == np.float64 and np.array_equal(got, np.asarray(rows, dtype=np.float64))
    assert float_rows([]).shape == np.asarray([], dtype=np.float64).shape
    with pytest.raises(ValueError):
        float_rows([[1.0, 2.0], [3.0]])
