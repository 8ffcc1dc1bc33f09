"""Models by name from the local Hugging Face cache (offline, never a download): a cache folder in the
layout huggingface_hub writes (models--org--name/{blobs,snapshots/<commit>,refs/main})."""

from __future__ import annotations

import hashlib
import socket
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save, save_file

import qubd
from qubd import ops
from qubd.checkpoints import CheckpointError
from tests.test_cli import run

pytest.importorskip("huggingface_hub", reason="huggingface_hub comes with the test extra (transformers)")

REPO_ID = "tiny-org/tiny-model"
OLD, NEW = "a" * 40, "b" * 40


def _weights(rows: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(rows)
    return {"layer.weight": torch.randn(rows, 12, generator=g), "layer.bias": torch.randn(rows, generator=g)}


def add_snapshot(cache: Path, repo_id: str, commit: str, weights: dict, branch: str | None = "main") -> Path:
    """One commit of a model in huggingface_hub's cache layout: the file is a blob named by its hash,
    linked from the snapshot folder; ``refs/<branch>`` holds the commit."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    data = save(weights)
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(Path("../../blobs") / blob.name)
    if branch is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / branch).write_text(commit)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    add_snapshot(cache, REPO_ID, OLD, _weights(8), branch=None)
    add_snapshot(cache, REPO_ID, NEW, _weights(16))
    return cache


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts
    assert attempts == [], f"tried to connect to {attempts}"


def test_a_name_is_scored_from_main_in_the_cache(hub_cache, no_network):
    report = qubd.score(REPO_ID, bits=4, baseline="none")
    assert report.source == REPO_ID
    [scored] = report.scored
    assert scored.shape == (16, 12)
    expected = ops.qubd(_weights(16)["layer.weight"], bits=4, clip=99.9)
    assert scored.planes == pytest.approx(expected.tolist(), rel=1e-12)


def test_revision_picks_that_commit(hub_cache, no_network, capsys):
    status, out, err = run(capsys, "score", REPO_ID, "--revision", OLD, "--dry-run")
    assert status == 0, err
    assert "layer.weight" in out and "8x12" in out and "16x12" not in out
    status, out, _ = run(capsys, "score", REPO_ID, "--dry-run")
    assert status == 0 and "16x12" in out


def test_hf_home_is_honoured(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    add_snapshot(tmp_path / "home" / "hub", REPO_ID, NEW, _weights(16))
    assert [t.shape for t in qubd.describe(REPO_ID).scored] == [(16, 12)]


def test_a_model_not_in_the_cache_is_one_line_saying_how_to_fetch_it(hub_cache, no_network, capsys):
    status, _, err = run(capsys, "score", "other-org/missing-model")
    assert status == 1 and err.count("\n") == 1
    assert err.startswith("qubd: error: other-org/missing-model: no such file or directory")
    assert str(hub_cache) in err and "fetch it first with 'hf download other-org/missing-model'" in err
    status, _, err = run(capsys, "score", REPO_ID, "--revision", "c" * 40)
    assert status == 1 and f"at revision {'c' * 40}" in err and f"--revision {'c' * 40}'" in err


def test_a_local_path_wins_over_a_cached_name(hub_cache, tmp_path, monkeypatch, no_network):
    local = tmp_path / "work" / REPO_ID
    local.mkdir(parents=True)
    save_file(_weights(4), local / "model.safetensors")
    monkeypatch.chdir(tmp_path / "work")
    assert [t.shape for t in qubd.describe(REPO_ID).scored] == [(4, 12)]


def test_a_missing_file_is_not_taken_for_a_name(hub_cache):
    with pytest.raises(CheckpointError, match="no such file or directory$"):
        qubd.describe("models/missing.safetensors")


def test_revision_needs_a_name(hub_cache, capsys):
    status, _, err = run(capsys, "score", "./model.safetensors", "--revision", OLD)
    assert status == 1 and "a revision applies to a Hugging Face model name" in err


def test_without_huggingface_hub_a_name_says_which_extra(hub_cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(CheckpointError, match=r"needs huggingface_hub: pip install 'qubd\[hf\]'"):
        qubd.describe(REPO_ID)
