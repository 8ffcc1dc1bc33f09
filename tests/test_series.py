"""``qubd series``: a run's checkpoints into a training log, checked against one ``qubd score`` per
checkpoint; resuming, finding checkpoints and their steps, refusing foreign or mismatched logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from qubd.checkpoints import CheckpointError
from qubd.report import ReportError, score_series
from qubd.report import series as series_module
from qubd.report.series import series_checkpoints
from tests.test_cli import PNG_MAGIC, run


def _save_run(folder: Path, steps: list[int], name: str = "checkpoint-{}") -> list[Path]:
    """A training run's checkpoints: weights drifting from noise towards a smooth matrix."""
    g = torch.Generator().manual_seed(0)
    noise = {"a.weight": torch.randn(32, 24, generator=g), "b.weight": torch.randn(16, 32, generator=g)}
    smooth = {k: torch.linspace(-1, 1, v.numel()).reshape(v.shape) for k, v in noise.items()}
    paths = []
    for i, step in enumerate(steps):
        path = folder / name.format(step)
        path.mkdir(parents=True)
        t = i / max(1, len(steps) - 1)
        tensors = {k: (1 - t) * noise[k] + t * smooth[k] for k in noise} | {"a.bias": torch.zeros(32)}
        save_file(tensors, path / "model.safetensors")
        paths.append(path)
    return paths


@pytest.mark.parametrize("reference", [None, "first"])
def test_series_equals_one_score_per_checkpoint(capsys, tmp_path, reference):
    checkpoints = _save_run(tmp_path / "run", [500, 0, 1000])
    log = tmp_path / "log.json"
    extra = ["--reference", reference] if reference else []
    status, out, err = run(capsys, "series", str(tmp_path / "run"), "--json", str(log), "--bits", "4", *extra)
    assert status == 0, err
    assert err == f"qubd: wrote the training log (3 checkpoint(s) added) to {log}\n"
    status, out, err = run(capsys, "series", str(tmp_path / "run"), "--json", str(log), "--bits", "4", *extra)
    assert status == 0 and err == f"qubd: {log} already holds every checkpoint; nothing written\n"
    data = json.loads(log.read_text())
    assert data["format"] == "qubd-training-log" and data["bits"] == 4
    assert [e["step"] for e in data["entries"]] == [0, 500, 1000]
    assert [e["checkpoint"] for e in data["entries"]] == [str(checkpoints[i]) for i in (1, 0, 2)]
    for entry in data["entries"]:
        report = tmp_path / f"{entry['step']}.json"
        ref = ["--reference", str(checkpoints[1])] if reference else []
        assert run(capsys, "score", entry["checkpoint"], "--bits", "4", "--json", str(report), *ref)[0] == 0
        expected = json.loads(report.read_text())
        assert entry["planes"] == [{k: p[k] for k in entry["planes"][0]} for p in expected["planes"]]
        assert entry["total"] == expected["total"]
        assert entry["tensors"] == {
            t["name"]: t["planes"] for t in expected["tensors"] if t["skipped"] is None
        }
    if reference:
        assert data["reference"] == str(checkpoints[1]) and data["entries"][0]["total"]["ratio"] == 100.0
        assert data["entries"][-1]["total"]["ratio"] < 99.0  # the smooth end state is simpler than step 0
    assert run(capsys, "plot", str(log), "-o", str(tmp_path / "log.png"))[0] == 0
    assert (tmp_path / "log.png").read_bytes()[:8] == PNG_MAGIC


def test_interrupted_series_resumes(tmp_path, monkeypatch):
    checkpoints = _save_run(tmp_path / "run", [0, 10, 20])
    broken = checkpoints[2] / "model.safetensors"
    good = broken.read_bytes()
    broken.write_bytes(good[:100])  # truncated: the series stops there
    log = tmp_path / "log.json"
    with pytest.raises(CheckpointError, match="model.safetensors"):
        score_series([tmp_path / "run"], log, bits=4, baseline="none")
    first = json.loads(log.read_text())
    assert [e["step"] for e in first["entries"]] == [0, 10]
    broken.write_bytes(good)
    scored = []
    original = series_module.score_source
    monkeypatch.setattr(
        series_module, "score_source", lambda s, *a, **k: scored.append(s.description) or original(s, *a, **k)
    )
    result = score_series([tmp_path / "run"], log, bits=4, baseline="none", progress=True)
    assert scored == [str(checkpoints[2])]
    assert [c.step for c in result.resumed] == [0, 10] and [c.step for c in result.scored] == [20]
    again = json.loads(log.read_text())
    assert again["entries"][:2] == first["entries"] and [e["step"] for e in again["entries"]] == [0, 10, 20]


def test_resuming_a_log_of_other_options_or_another_file_is_refused(tmp_path):
    _save_run(tmp_path / "run", [0, 10])
    log = tmp_path / "log.json"
    score_series([tmp_path / "run"], log, bits=4, baseline="none")
    before = log.read_bytes()
    with pytest.raises(ReportError, match="was written with bits 4, this series has 5"):
        score_series([tmp_path / "run"], log, bits=5, baseline="none")
    with pytest.raises(ReportError, match=r"was written with include \[\], this series has \['a.'\]"):
        score_series([tmp_path / "run"], log, bits=4, baseline="none", include="a.")
    with pytest.raises(
        ReportError, match="holds .*checkpoint-10 at step 10, but this series has .* at step 7"
    ):
        score_series([tmp_path / "run" / "checkpoint-10"], log, steps=[7], bits=4, baseline="none")
    assert log.read_bytes() == before
    other = tmp_path / "notes.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(ReportError, match="not a qubd training log; not overwriting it"):
        score_series([tmp_path / "run"], other, bits=4)
    assert other.read_text() == '{"hello": 1}'


def test_checkpoints_and_steps_are_found(tmp_path):
    pythia = _save_run(tmp_path / "pythia", [1000, 0, 512], name="step{}")
    assert [(c.step, c.path) for c in series_checkpoints([tmp_path / "pythia"])] == [
        (0, pythia[1]),
        (512, pythia[2]),
        (1000, pythia[0]),
    ]
    files = []
    for name in ("model_300.pt", "model_20.pt"):
        torch.save({"w": torch.randn(8, 8)}, tmp_path / name)
        files.append(tmp_path / name)
    assert [c.step for c in series_checkpoints(files)] == [20, 300]
    assert [(c.step, c.path.name) for c in series_checkpoints(files, steps=[5, 4])] == [
        (4, "model_20.pt"),
        (5, "model_300.pt"),
    ]
    torch.save({"w": torch.randn(8, 8)}, tmp_path / "final.pt")
    with pytest.raises(ReportError, match="final.pt: cannot read a step from the name.*--steps"):
        series_checkpoints([tmp_path / "final.pt"])
    with pytest.raises(ReportError, match="1 steps given for 2 checkpoints"):
        series_checkpoints(files, steps=[1])
    with pytest.raises(ReportError, match="both have step 3"):
        series_checkpoints(files, steps=[3, 3])


def test_cli_series_errors_are_one_line(capsys, tmp_path):
    _save_run(tmp_path / "run", [0])
    log = str(tmp_path / "log.json")
    for argv, fragment in (
        (["series", str(tmp_path / "missing"), "--json", log], "no such file or directory"),
        (
            ["series", str(tmp_path / "run"), "--json", log, "--steps", "x"],
            "comma-separated list of integers",
        ),
        (["series", str(tmp_path / "run"), "--json", log, "--binary"], "not part of a training log"),
        (
            ["series", str(tmp_path / "run"), "--json", log, "--reference", "first", "--baseline", "none"],
            "cannot be combined",
        ),
    ):
        status, _, err = run(capsys, *argv)
        assert status != 0 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "log.json").exists()
