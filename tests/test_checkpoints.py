"""Loading what qubd scores: modules, state dicts, safetensors files and directories, torch files."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import parametrize

from qubd.checkpoints import (
    CheckpointError,
    NameFilter,
    TensorEntry,
    nonfinite_count,
    open_source,
    skip_reason,
    stream_tensors,
)


def _names(source) -> list[str]:
    return [e.name for e in source.entries]


def _skips(source) -> dict[str, str | None]:
    return {e.name: e.skipped or skip_reason(e.shape, e.dtype) for e in source.entries}


# --- eligibility and filters -------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.float8_e4m3fn]
)
@pytest.mark.parametrize("bad", [[], [float("nan")], [float("inf"), float("-inf")], [float("nan")] * 3])
def test_nonfinite_count_counts_nan_and_inf(cpu_backend, dtype, bad):
    w = torch.randn(7, 9, generator=torch.Generator().manual_seed(0)).to(dtype)
    flat = w.view(-1)
    for i, value in enumerate(bad):
        flat[5 * i + 2] = value
    expected = int((~torch.isfinite(w.to(torch.float64))).sum())
    # fp8 e4m3fn has no infinity: +-Inf saturates to +-448 when stored, a NaN stays one
    assert expected == (sum(v != v for v in bad) if dtype == torch.float8_e4m3fn else len(bad))  # v != v: NaN
    assert nonfinite_count(w) == expected
    assert nonfinite_count(w[:0]) == 0


@pytest.mark.parametrize(
    ("shape", "dtype", "reason"),
    [
        ((8, 8), "float32", None),
        ((8, 2, 2), "bfloat16", None),  # 8 x 4 after flatten(1)
        ((16,), "float32", "1-D"),
        ((), "float32", "0-D"),
        ((3, 8), "float16", "side < 4 (a 3x8 matrix)"),
        ((8, 1, 3), "float32", "side < 4 (a 8x3 matrix)"),
        ((8, 8), "int64", "not floating point (int64)"),
        ((8, 8), "bool", "not floating point (bool)"),
        ((8, 8), "float8_e4m3fn", None),
    ],
)
def test_skip_reason(shape, dtype, reason):
    assert skip_reason(shape, dtype) == reason


def test_name_filter_globs_and_substrings():
    keep = NameFilter.of(include=["*.weight", "layers.1"], exclude="*embed*")
    assert keep("model.layers.0.mlp.weight")
    assert keep("model.layers.1.mlp.bias")  # substring match
    assert not keep("model.embed_tokens.weight")
    assert not keep("model.norm.bias")
    assert NameFilter.of(None, None)("anything")


# --- modules -----------------------------------------------------------------------------------


class _Symmetric(nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(0, 1)


class _Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(32, 8)
        self.conv = nn.Conv2d(2, 8, 3)
        self.head = nn.Linear(8, 32)
        self.head.weight = self.embed.weight
        self.frozen = nn.Linear(8, 8)
        self.frozen.weight.requires_grad_(False)
        self.gain = nn.Parameter(torch.ones(8, 8))  # a parameter, but not a module's weight
        self.sym = nn.Linear(8, 8)
        parametrize.register_parametrization(self.sym, "weight", _Symmetric())


def test_module_entries_follow_the_design():
    model = _Tied()
    with open_source(model) as source:
        skips = _skips(source)
        assert source.is_module
    assert skips["embed.weight"] is None
    assert skips["conv.weight"] is None  # 8 x 18 after flatten(1)
    assert skips["head.weight"] == "tied (same tensor as embed.weight)"
    assert skips["head.bias"] == "1-D"
    assert skips["frozen.weight"] == "not trainable (requires_grad=False)"
    assert skips["gain"] == "not a module weight (gain)"
    assert skips["sym.parametrizations.weight.original"] is None  # the original, not sym.weight


def test_weight_norm_scores_the_direction_and_says_why_the_magnitude_is_skipped():
    layer = nn.utils.parametrizations.weight_norm(nn.Linear(8, 8))
    with open_source(layer) as source:
        skips = _skips(source)
        (entry,) = [e for e in source.entries if e.name == "parametrizations.weight.original1"]
        assert torch.equal(entry.load(), layer.parametrizations.weight.original1)
        assert entry.reinitialize(0).shape == (8, 8)
    assert skips["parametrizations.weight.original1"] is None
    assert skips["parametrizations.weight.original0"] == (
        "weight_norm magnitude (original0, g; its direction original1, v, is scored)"
    )


def test_other_parametrizations_with_several_originals_are_skipped_with_a_reason():
    class Sum(nn.Module):
        def forward(self, a, b):
            return a + b

        def right_inverse(self, w):
            return w / 2, w / 2

    layer = nn.Linear(8, 8)
    parametrize.register_parametrization(layer, "weight", Sum())
    with open_source(layer) as source:
        skips = _skips(source)
    assert skips["parametrizations.weight.original1"] == (
        "one of several originals of a parametrized weight (original1)"
    )


def test_reinitialize_leaves_a_parametrized_model_usable():
    model = _Tied()
    layer = nn.utils.parametrizations.weight_norm(nn.Linear(8, 8))
    with open_source(model) as source:
        entry = {e.name: e for e in source.entries}["sym.parametrizations.weight.original"]
        assert torch.equal(entry.reinitialize(1), entry.reinitialize(1))
    with open_source(layer) as source:
        entry = {e.name: e for e in source.entries}["parametrizations.weight.original1"]
        assert torch.equal(entry.reinitialize(1), entry.reinitialize(1))
    assert model.sym.weight.shape == (8, 8) and layer.weight.shape == (8, 8)
    assert parametrize.is_parametrized(model.sym, "weight")


def test_parameters_sharing_storage_are_tied():
    model = _Tied()
    # two Parameter objects over the same memory (as load_state_dict(..., assign=True) or tying by
    # .data leaves them)
    model.head.weight = nn.Parameter(model.embed.weight.data)
    assert model.head.weight is not model.embed.weight
    with open_source(model) as source:
        skips = _skips(source)
    assert skips["embed.weight"] is None
    assert skips["head.weight"] == "tied (same tensor as embed.weight)"


def test_views_of_one_storage_with_other_shapes_are_not_tied():
    base = torch.randn(16, 8)
    with open_source({"top": base[:8], "bottom": base[8:], "again": base[:8]}) as source:
        assert _skips(source) == {"top": None, "bottom": None, "again": "tied (same tensor as top)"}


def test_tie_detection_is_one_function():
    from qubd.checkpoints import mapping_source, module_source
    from qubd.checkpoints.entries import tensor_identity

    assert module_source.tensor_identity is tensor_identity
    assert mapping_source.tensor_identity is tensor_identity
    assert not hasattr(mapping_source, "_identity")


def test_module_entry_loads_the_parametrization_original():
    model = _Tied()
    with open_source(model, include="sym.") as source:
        (entry,) = [e for e in source.entries if e.name.endswith("original")]
        original = model.sym.parametrizations.weight.original
        assert torch.equal(entry.load(), original)
        assert not torch.equal(entry.load(), model.sym.weight)


def test_module_reinitialize_is_seeded_and_leaves_the_model_alone():
    model = _Tied()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with open_source(model) as source:
        entries = {e.name: e for e in source.entries}
        conv = entries["conv.weight"]
        a, b, c = conv.reinitialize(1), conv.reinitialize(1), conv.reinitialize(2)
        sym = entries["sym.parametrizations.weight.original"].reinitialize(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == model.conv.weight.shape and not torch.equal(a, model.conv.weight)
    assert sym.shape == (8, 8)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_module_without_reset_parameters_cannot_be_reinitialised():
    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(8, 8))

    with open_source(Bare()) as source, pytest.raises(CheckpointError, match="reset_parameters"):
        source.entries[0].reinitialize(0)


# --- state dicts -------------------------------------------------------------------------------


def test_state_dict_marks_tied_tensors():
    w = torch.randn(8, 8)
    with open_source({"a": w, "b": w, "c": w.clone()}) as source:
        assert _skips(source) == {"a": None, "b": "tied (same tensor as a)", "c": None}


def test_training_checkpoint_is_scored_by_its_state_dict(tmp_path):
    path = tmp_path / "train.pt"
    torch.save(
        {"state_dict": {"w": torch.randn(8, 8)}, "optimizer": {"m": torch.randn(8, 8)}, "epoch": 3}, path
    )
    with open_source(path) as source:
        assert _skips(source) == {"w": None, "optimizer.m": "optimizer state (under 'optimizer')"}


def test_optimizer_state_beside_a_model_is_skipped_not_scored():
    net = {"layer.weight": torch.randn(8, 8)}
    opt = {"state": {0: {"exp_avg": torch.randn(8, 8), "step": torch.tensor(3.0)}}, "param_groups": []}
    sched = {"base_lrs": [0.1], "warm": [torch.randn(8, 8)]}
    with open_source(
        {"net": net, "optimizer": opt, "lr_scheduler": sched, "scaler": {"s": torch.ones(4, 4)}}
    ) as s:
        skips = {e.name: e.skipped for e in s.entries}
    assert skips == {
        "net.layer.weight": None,
        "optimizer.state.0.exp_avg": "optimizer state (under 'optimizer')",
        "optimizer.state.0.step": "optimizer state (under 'optimizer')",
        "lr_scheduler.warm.0": "optimizer state (under 'lr_scheduler')",
        "scaler.s": "optimizer state (under 'scaler')",
    }


def test_a_parameter_named_like_training_state_is_still_a_weight():
    with open_source({"scaler": torch.randn(8, 8)}) as source:
        assert _skips(source) == {"scaler": None}


def test_tensors_beside_the_wrapped_state_dict_are_scored_not_dropped(tmp_path):
    path = tmp_path / "train.pt"
    model = {"body.weight": torch.randn(8, 8)}
    torch.save(
        {"model": model, "head": {"weight": torch.randn(8, 8)}, "optim": {"m": torch.randn(8, 8)}}, path
    )
    with open_source(path) as source:
        skips = {e.name: e.skipped for e in source.entries}
    assert skips == {"body.weight": None, "head.weight": None, "optim.m": "optimizer state (under 'optim')"}


def test_nested_tensors_get_dotted_names():
    with open_source({"enc": {"layers": [torch.randn(4, 4), torch.randn(4, 4)]}, "n": 3}) as source:
        assert _names(source) == ["enc.layers.0", "enc.layers.1"]


# --- safetensors files and directories ---------------------------------------------------------


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "a.weight": torch.randn(16, 8, generator=g),
        "a.bias": torch.randn(16, generator=g),
        "b.weight": torch.randn(8, 16, generator=g).to(torch.bfloat16),
        "c.weight": torch.randn(8, 8, generator=g).to(torch.float16),
        "ids": torch.arange(16).reshape(4, 4),
    }


def test_safetensors_file_entries_come_from_the_header(tmp_path):
    tensors = _tensors()
    save_file(tensors, tmp_path / "m.safetensors")
    with open_source(tmp_path / "m.safetensors") as source:
        entries = {e.name: e for e in source.entries}
        assert {n: (e.shape, e.dtype) for n, e in entries.items()} == {
            "a.weight": ((16, 8), "float32"),
            "a.bias": ((16,), "float32"),
            "b.weight": ((8, 16), "bfloat16"),
            "c.weight": ((8, 8), "float16"),
            "ids": ((4, 4), "int64"),
        }
        for name, tensor in tensors.items():
            loaded = entries[name].load()
            assert loaded.dtype == tensor.dtype and torch.equal(loaded, tensor)


def test_fp8_tensors_are_floating(tmp_path):
    save_file({"w": torch.randn(8, 8).to(torch.float8_e4m3fn)}, tmp_path / "f8.safetensors")
    with open_source(tmp_path / "f8.safetensors") as source:
        (entry,) = source.entries
        assert entry.dtype == "float8_e4m3fn" and skip_reason(entry.shape, entry.dtype) is None


def _sharded(directory: Path) -> dict[str, torch.Tensor]:
    tensors = _tensors()
    shards = {"model-00001-of-00002.safetensors": ["a.weight", "a.bias"]}
    shards["model-00002-of-00002.safetensors"] = ["b.weight", "c.weight", "ids"]
    for shard, names in shards.items():
        save_file({n: tensors[n] for n in names}, directory / shard)
    weight_map = {n: shard for shard, names in shards.items() for n in names}
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return tensors


def test_hugging_face_directory_with_shard_index(tmp_path):
    tensors = _sharded(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with open_source(tmp_path) as source:
        assert sorted(_names(source)) == sorted(tensors)
        assert str(tmp_path) in source.description


def test_directory_with_one_safetensors_file(tmp_path):
    save_file(_tensors(), tmp_path / "model.safetensors")
    with open_source(tmp_path) as source:
        assert len(source.entries) == 5


def test_several_paths_make_one_checkpoint(tmp_path):
    _sharded(tmp_path)
    shards = sorted(tmp_path.glob("*.safetensors"))
    with open_source(shards) as source:
        assert len(source.entries) == 5
    with pytest.raises(CheckpointError, match="appears more than once"):
        open_source([shards[0], shards[0]])


def test_missing_shard_is_an_error(tmp_path):
    _sharded(tmp_path)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model-00002-of-00002.safetensors, which is missing"):
        open_source(tmp_path)


def test_index_naming_a_tensor_its_shard_lacks_is_an_error(tmp_path):
    _sharded(tmp_path)
    index = tmp_path / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"]["ghost"] = "model-00001-of-00002.safetensors"
    index.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="'ghost'"):
        open_source(tmp_path)


def test_broken_index_is_an_error(tmp_path):
    _sharded(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid shard index"):
        open_source(tmp_path)


@pytest.mark.parametrize("cut", ["data", "header", "empty"])
def test_truncated_safetensors_is_an_error_naming_the_file(tmp_path, cut):
    path = tmp_path / "m.safetensors"
    save_file(_tensors(), path)
    data = path.read_bytes()
    path.write_bytes({"data": data[:-10], "header": data[:20], "empty": b""}[cut])
    with pytest.raises(CheckpointError, match=r"m\.safetensors: not a valid safetensors file"):
        open_source(path)


def test_directory_without_checkpoint(tmp_path):
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(CheckpointError, match="no checkpoint in this directory"):
        open_source(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="no such file or directory"):
        open_source(tmp_path / "nope.safetensors")


def test_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello world, this is text")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        open_source(path)


def test_unsupported_argument_type():
    with pytest.raises(TypeError, match="cannot score a int"):
        open_source(3)


# --- PyTorch files -----------------------------------------------------------------------------


@pytest.mark.parametrize("zipped", [True, False])
def test_torch_files_load_with_weights_only(tmp_path, zipped):
    tensors = _tensors()
    path = tmp_path / "pytorch_model.bin"
    torch.save(tensors, path, _use_new_zipfile_serialization=zipped)
    with open_source(path) as source:
        for entry in source.entries:
            assert torch.equal(entry.load(), tensors[entry.name])


def test_torch_file_is_read_by_content_whatever_its_name(tmp_path):
    path = tmp_path / "weights.data"
    torch.save({"w": torch.randn(8, 8)}, path)
    with open_source(path) as source:
        assert _names(source) == ["w"]


MARKER_ENV = "QUBD_TEST_PICKLE_MARKER"


def _leave_marker() -> None:  # what a malicious pickle would run
    Path(os.environ[MARKER_ENV]).write_text("executed")


class _Malicious:
    def __reduce__(self):
        return (_leave_marker, ())


def test_pickle_needing_code_is_refused_not_executed(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.randn(8, 8), "payload": _Malicious()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused to load.*_leave_marker"):
        open_source(path)
    assert not marker.exists()


def test_truncated_torch_file_is_an_error(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(_tensors(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"model\.pt: cannot read this PyTorch file"):
        open_source(path)


def test_directory_of_torch_shards(tmp_path):
    tensors = _tensors()
    torch.save({k: tensors[k] for k in ("a.weight", "a.bias")}, tmp_path / "pytorch_model-1.bin")
    torch.save({k: tensors[k] for k in ("b.weight", "c.weight")}, tmp_path / "pytorch_model-2.bin")
    weight_map = {"a.weight": "pytorch_model-1.bin", "a.bias": "pytorch_model-1.bin"}
    weight_map |= {"b.weight": "pytorch_model-2.bin", "c.weight": "pytorch_model-2.bin"}
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with open_source(tmp_path) as source:
        assert sorted(_names(source)) == sorted(weight_map)


def test_filters_count_excluded(tmp_path):
    save_file(_tensors(), tmp_path / "m.safetensors")
    with open_source(tmp_path / "m.safetensors", include="*.weight", exclude="c.*") as source:
        assert sorted(_names(source)) == ["a.weight", "b.weight"]
        assert source.excluded == 3


# --- streaming ---------------------------------------------------------------------------------


def test_stream_reads_wanted_tensors_in_order_one_ahead():
    events: list[str] = []
    lock = threading.Lock()

    def loader(name: str):
        def load():
            with lock:
                events.append(f"load {name}")
            return torch.full((4, 4), float(len(name)))

        return load

    entries = [TensorEntry(n, (4, 4), "float32", loader(n)) for n in ("a", "bb", "skip", "ccc")]
    seen = []
    for entry, tensor in stream_tensors(entries, lambda e: e.name != "skip", torch.device("cpu")):
        with lock:
            events.append(f"use {entry.name}")
        seen.append((entry.name, None if tensor is None else tensor[0, 0].item()))
    assert seen == [("a", 1.0), ("bb", 2.0), ("skip", None), ("ccc", 3.0)]
    assert "load skip" not in events
    # never more than one tensor read ahead of the one in use
    for i, event in enumerate(events):
        if event.startswith("load "):
            used = sum(e.startswith("use ") for e in events[:i])
            loaded = sum(e.startswith("load ") for e in events[:i])
            assert loaded - used <= 1, events


def test_stream_propagates_read_errors():
    def broken():
        raise CheckpointError("x.safetensors: cannot read tensor 'w'")

    entries = [TensorEntry("w", (4, 4), "float32", broken)]
    with pytest.raises(CheckpointError, match="cannot read tensor 'w'"):
        list(stream_tensors(entries, lambda e: True, torch.device("cpu")))


# --- review fixes: shard indexes and model directories -------------------------------------------


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "nested_dotdot", "linked_folder"])
def test_index_entry_outside_its_directory_is_refused(tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    save_file({"secret": torch.randn(8, 8)}, outside / "x.safetensors")
    model = tmp_path / "model"
    model.mkdir()
    save_file({"w": torch.randn(8, 8)}, model / "model-1.safetensors")
    if kind == "linked_folder":
        (model / "sub").symlink_to(outside, target_is_directory=True)
    shard = {
        "dotdot": "../outside/x.safetensors",
        "absolute": str(outside / "x.safetensors"),
        "nested_dotdot": "sub/../../outside/x.safetensors",
        "linked_folder": "sub/x.safetensors",
    }[kind]
    weight_map = {"w": "model-1.safetensors", "secret": shard}
    (model / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError) as err:
        open_source(model)
    message = str(err.value)
    assert "model.safetensors.index.json" in message and repr(shard) in message
    assert "outside" in message


def test_index_entry_in_a_subfolder_or_symlinked_file_is_fine(tmp_path):
    blobs = tmp_path / "blobs"  # the Hugging Face cache links snapshot files to blobs elsewhere
    blobs.mkdir()
    save_file({"w": torch.randn(8, 8)}, blobs / "abc123")
    model = tmp_path / "snapshot"
    (model / "sub").mkdir(parents=True)
    (model / "model-1.safetensors").symlink_to(blobs / "abc123")
    save_file({"v": torch.randn(8, 8)}, model / "sub" / "model-2.safetensors")
    weight_map = {"w": "model-1.safetensors", "v": "./sub/model-2.safetensors"}
    (model / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with open_source(model) as source:
        assert sorted(_names(source)) == ["v", "w"]


def test_directory_ignores_training_state_files(tmp_path):
    torch.save({"w": torch.randn(8, 8)}, tmp_path / "pytorch_model.bin")
    # like transformers' TrainingArguments: an object torch.load(weights_only=True) refuses
    torch.save(argparse.Namespace(output_dir="x"), tmp_path / "training_args.bin")
    with open_source(tmp_path) as source:
        assert _names(source) == ["w"]


def test_directory_prefers_model_pt_over_optimizer_pt(tmp_path):
    torch.save({"w": torch.randn(8, 8)}, tmp_path / "model.pt")
    torch.save({"state": {0: {"exp_avg": torch.randn(8, 8)}}}, tmp_path / "optimizer.pt")
    torch.save({"last_epoch": 1}, tmp_path / "scheduler.pt")
    torch.save({"scale": torch.ones(())}, tmp_path / "scaler.pt")
    torch.save({"cpu": torch.ones(4)}, tmp_path / "rng_state_0.pth")
    with open_source(tmp_path) as source:
        assert _names(source) == ["w"]


def test_directory_prefers_the_standard_weight_file_names(tmp_path):
    save_file({"w": torch.randn(8, 8)}, tmp_path / "model.safetensors")
    save_file({"lora": torch.randn(8, 8)}, tmp_path / "adapter.safetensors")
    with open_source(tmp_path) as source:
        assert _names(source) == ["w"]


def test_directory_of_only_training_state_is_an_error(tmp_path):
    torch.save({"state": {}}, tmp_path / "optimizer.pt")
    with pytest.raises(CheckpointError, match="no checkpoint in this directory"):
        open_source(tmp_path)


def _torch_shards(directory: Path) -> dict[str, str]:
    tensors = _tensors()
    torch.save({k: tensors[k] for k in ("a.weight", "a.bias")}, directory / "pytorch_model-1.bin")
    torch.save({k: tensors[k] for k in ("b.weight", "c.weight")}, directory / "pytorch_model-2.bin")
    weight_map = {"a.weight": "pytorch_model-1.bin", "a.bias": "pytorch_model-1.bin"}
    return weight_map | {"b.weight": "pytorch_model-2.bin", "c.weight": "pytorch_model-2.bin"}


def test_torch_shard_lacking_an_indexed_tensor_is_an_error(tmp_path):
    weight_map = _torch_shards(tmp_path) | {"ghost": "pytorch_model-1.bin"}
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError, match=r"pytorch_model-1\.bin: the index lists 1 tensor.*'ghost'"):
        open_source(tmp_path)


@pytest.mark.parametrize("fmt", ["safetensors", "torch"])
def test_shard_tensor_the_index_does_not_list_is_reported_skipped(tmp_path, fmt):
    if fmt == "torch":
        weight_map = _torch_shards(tmp_path)
        del weight_map["c.weight"]
        index = tmp_path / "pytorch_model.bin.index.json"
        shard = "pytorch_model-2.bin"
    else:
        _sharded(tmp_path)
        index = tmp_path / "model.safetensors.index.json"
        weight_map = json.loads(index.read_text())["weight_map"]
        del weight_map["c.weight"]
        shard = "model-00002-of-00002.safetensors"
    index.write_text(json.dumps({"weight_map": weight_map}))
    with open_source(tmp_path) as source:
        skips = {e.name: e.skipped for e in source.entries}
    assert skips["c.weight"] == f"not in the shard index ({index.name} does not list it for {shard})"
    assert skips["b.weight"] is None


class _Plain:  # a class torch.load(weights_only=True) does not allow
    pass


@pytest.mark.parametrize(
    ("protocol", "reason"), [(2, "Unsupported global: GLOBAL "), (4, "Unsupported operand")]
)
def test_plain_pickle_refusal_keeps_torchs_reason_on_one_line(tmp_path, protocol, reason, recwarn):
    path = tmp_path / "plain.pkl"
    with open(path, "wb") as f:
        pickle.dump({"w": torch.randn(8, 8), "obj": _Plain()}, f, protocol=protocol)
    with pytest.raises(CheckpointError) as err:
        open_source(path)
    message = str(err.value)
    assert f"holds ({reason}" in message, message
    assert "\n" not in message and "\x1b" not in message and "()" not in message
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]
