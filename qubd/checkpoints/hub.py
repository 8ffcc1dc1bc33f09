"""Models by name: ``sentence-transformers/all-MiniLM-L6-v2`` is read from the local Hugging Face cache,
through ``huggingface_hub`` (the ``hf`` extra), offline: a model that is not cached is a CheckpointError
saying how to fetch it, never a download."""

from __future__ import annotations

import os
import re
from pathlib import Path

from qubd.checkpoints.errors import CheckpointError

# A Hub repository id: "org/name" (one slash, no path-like start). A single bare word is not taken for
# a name: it is far more likely a mistyped local file.
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".json")


def hub_cache() -> Path:
    """The cache folder ``huggingface_hub`` uses, from the environment at call time (its own constants
    are read once, at import): ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub`` (default ``~/.cache/huggingface/hub``)."""
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if cache:
        return Path(cache).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def looks_like_repo_id(spec: str | os.PathLike) -> bool:
    text = os.fspath(spec)
    return bool(REPO_ID.fullmatch(text)) and not text.lower().endswith(CHECKPOINT_SUFFIXES)


def cached_model(repo_id: str, revision: str | None = None) -> Path:
    """The snapshot folder of ``repo_id`` at ``revision`` (a branch, tag or commit; default main) in the
    local Hugging Face cache. CheckpointError when it is not there (nothing is downloaded)."""
    cache = hub_cache()
    at = "" if revision is None else f" at revision {revision}"
    fetch = f"hf download {repo_id}" + ("" if revision is None else f" --revision {revision}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(
            f"{repo_id}: no such file or directory; reading it as a model from the Hugging Face cache needs "
            "huggingface_hub: pip install 'qubd[hf]'"
        ) from None
    try:
        folder = snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=True)
    except Exception as err:  # LocalEntryNotFoundError, HFValidationError, a broken cache entry
        raise CheckpointError(
            f"{repo_id}: no such file or directory, and no model of that name{at} in the Hugging Face cache "
            f"{cache} (HF_HUB_CACHE / HF_HOME); qubd does not download: fetch it first with '{fetch}'"
        ) from err
    return Path(folder)


def resolve_checkpoint(spec: str | os.PathLike, revision: str | None = None) -> Path:
    """A local path as it is; a Hub model name (``org/name``) that is no local path, as its snapshot in
    the cache. With ``revision``, ``spec`` must be a model name and is always looked up in the cache."""
    path = Path(spec)
    if revision is not None:
        if not looks_like_repo_id(spec):
            raise CheckpointError(f"{spec}: a revision applies to a Hugging Face model name (org/name)")
        return cached_model(os.fspath(spec), revision)
    if path.exists() or not looks_like_repo_id(spec):
        return path
    return cached_model(os.fspath(spec))
