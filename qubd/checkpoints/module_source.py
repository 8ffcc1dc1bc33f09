"""The tensors of an ``nn.Module`` that are scored: each trainable ``weight`` with ndim >= 2 (for a
parametrized weight, its ``original``), each distinct tensor once even when tied (docs/design.md).

Tied means the same values in the same memory (``entries.tensor_identity``), whether one Parameter
object or several sharing storage. A parametrization with several originals has no single
"original": for ``weight_norm`` (``original0`` = g, the magnitude, one value per output row;
``original1`` = v, the direction, of the weight's full shape) ``original1`` is scored as the layer's
weight and ``original0`` is skipped with a reason saying so. The originals of other parametrizations
with several of them are skipped ("one of several originals")."""

from __future__ import annotations

import copy
import re

import torch
from torch import nn
from torch.nn.utils import parametrize

from qubd.checkpoints.eligibility import skip_reason
from qubd.checkpoints.entries import TensorEntry, dtype_name, tensor_identity
from qubd.checkpoints.errors import CheckpointError

WEIGHT = "weight"
WEIGHT_NORM_MAGNITUDE = "original0"  # g
WEIGHT_NORM_DIRECTION = "original1"  # v, the weight's shape: scored


def module_entries(module: nn.Module) -> list[TensorEntry]:
    """Every parameter of ``module`` in ``named_parameters`` order; all but the scored ones carry a
    skip reason (tied to an earlier name, 1-D, not a module weight, frozen)."""
    entries = []
    first_name: dict[tuple, str] = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        owner_path, is_weight = _weight_owner(module, name)
        identity = tensor_identity(param)
        reason = _skip(module, param, name, first_name.get(identity), is_weight)
        first_name.setdefault(identity, name)
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


def _skip(
    module: nn.Module, param: nn.Parameter, name: str, tied_to: str | None, is_weight: bool
) -> str | None:
    if tied_to is not None:
        return f"tied (same tensor as {tied_to})"
    if _weight_norm_part(module, name) == WEIGHT_NORM_MAGNITUDE:
        return (
            f"weight_norm magnitude ({WEIGHT_NORM_MAGNITUDE}, g; its direction {WEIGHT_NORM_DIRECTION}, "
            "v, is scored)"
        )
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
    if parts[-2:] == ["parametrizations", WEIGHT]:
        owner_path = ".".join(parts[:-2])
        if attr == "original":
            return owner_path, parametrize.is_parametrized(module.get_submodule(owner_path), WEIGHT)
        if _weight_norm_part(module, name) == WEIGHT_NORM_DIRECTION:
            return owner_path, True
    return path, False


def _weight_norm_part(module: nn.Module, name: str) -> str | None:
    """``original0`` / ``original1`` when ``name`` is that original of a ``weight_norm``-parametrized
    ``weight`` (``torch.nn.utils.parametrizations.weight_norm``), else None."""
    path, _, attr = name.rpartition(".")
    parts = path.split(".")
    if attr not in (WEIGHT_NORM_MAGNITUDE, WEIGHT_NORM_DIRECTION):
        return None
    if parts[-2:] != ["parametrizations", WEIGHT]:
        return None
    owner = module.get_submodule(".".join(parts[:-2]))
    if not parametrize.is_parametrized(owner, WEIGHT):
        return None
    chain = owner.parametrizations[WEIGHT]
    if len(chain) == 1 and type(chain[0]).__name__ == "_WeightNorm":
        return attr
    return None


def _reinitializer(module: nn.Module, owner_path: str, name: str):
    """A fresh random ``weight`` of a copy of the owning module (its ``reset_parameters``), seeded."""

    def reinitialize(seed: int) -> torch.Tensor:
        owner = copy.deepcopy(module.get_submodule(owner_path))
        if parametrize.is_parametrized(owner, WEIGHT):
            _own_class(owner)
            # several originals (weight_norm) cannot be turned back into one: keep the weight they
            # make, which reset_parameters() then overwrites
            several = not hasattr(owner.parametrizations[WEIGHT], "original")
            parametrize.remove_parametrizations(owner, WEIGHT, leave_parametrized=several)
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


def _own_class(copied: nn.Module) -> None:
    """Give a deep copy of a parametrized module a class of its own. ``deepcopy`` keeps the class,
    which ``register_parametrization`` created for the original module, and ``remove_parametrizations``
    deletes the parametrized property from that class: on a shared class, that would break the
    user's model (``model.layer.weight`` an AttributeError)."""
    cls = type(copied)
    namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    copied.__class__ = type(cls.__name__, cls.__bases__, namespace)
