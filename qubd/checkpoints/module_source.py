"""The tensors of an ``nn.Module`` that are scored: each trainable ``weight`` with ndim >= 2 (for a
parametrized weight, its ``original``), each distinct tensor once even when tied (DESIGN.md)."""

from __future__ import annotations

import copy
import re

import torch
from torch import nn
from torch.nn.utils import parametrize

from qubd.checkpoints.eligibility import skip_reason
from qubd.checkpoints.entries import TensorEntry, dtype_name
from qubd.checkpoints.errors import CheckpointError

WEIGHT = "weight"


def module_entries(module: nn.Module) -> list[TensorEntry]:
    """Every parameter of ``module`` in ``named_parameters`` order; all but the scored ones carry a
    skip reason (tied to an earlier name, 1-D, not a module weight, frozen)."""
    entries = []
    first_name: dict[int, str] = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        owner_path, is_weight = _weight_owner(module, name)
        reason = _skip(param, name, first_name.get(id(param)), is_weight)
        first_name.setdefault(id(param), name)
        entries.append(
            TensorEntry(
                name=name,
                shape=tuple(param.shape),
                dtype=dtype_name(param.dtype),
                load=param.detach,
                skipped=reason,
                reinitialize=_reinitializer(module, owner_path, name) if is_weight else None,
            )
        )
    return entries


def _skip(param: nn.Parameter, name: str, tied_to: str | None, is_weight: bool) -> str | None:
    if tied_to is not None:
        return f"tied (same tensor as {tied_to})"
    reason = skip_reason(tuple(param.shape), dtype_name(param.dtype))
    if reason is not None:
        return reason
    if not is_weight:
        attr = name.rpartition(".")[2]
        if re.fullmatch(r"original\d+", attr):
            return f"one of several originals of a parametrized weight ({attr})"
        return f"not a module weight ({attr})"
    if not param.requires_grad:
        return "not trainable (requires_grad=False)"
    return None


def _weight_owner(module: nn.Module, name: str) -> tuple[str, bool]:
    """The path of the module whose ``weight`` this parameter is, and whether it is one: either
    ``<path>.weight`` itself, or the ``original`` of a parametrized ``<path>.weight``."""
    path, _, attr = name.rpartition(".")
    if attr == WEIGHT:
        return path, True
    parts = path.split(".")
    if attr == "original" and parts[-2:] == ["parametrizations", WEIGHT]:
        owner_path = ".".join(parts[:-2])
        return owner_path, parametrize.is_parametrized(module.get_submodule(owner_path), WEIGHT)
    return path, False


def _reinitializer(module: nn.Module, owner_path: str, name: str):
    """A fresh random ``weight`` of a copy of the owning module (its ``reset_parameters``), seeded."""

    def reinitialize(seed: int) -> torch.Tensor:
        owner = copy.deepcopy(module.get_submodule(owner_path))
        if parametrize.is_parametrized(owner, WEIGHT):
            parametrize.remove_parametrizations(owner, WEIGHT, leave_parametrized=False)
        reset = getattr(owner, "reset_parameters", None)
        if reset is None:
            raise CheckpointError(
                f"cannot re-initialise '{name}': {type(owner).__name__} has no reset_parameters(); "
                "use the shuffle baseline"
            )
        weight = getattr(owner, WEIGHT)
        devices = [weight.device] if weight.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            reset()
        return getattr(owner, WEIGHT).detach()

    return reinitialize
