"""``qubd.score`` on every rank of a process group: a sharded (FSDP2, tensor-parallel) or replicated
(DDP) model, or a checkpoint scored by many processes. Every rank gets the same Report, equal to
one process's score of the whole model.

Replicated tensors (a DDP model's, a checkpoint's) are split over the ranks, balanced by size; each
rank scores its share as one process would (``qubd.report.scoring.score_entries``) and reads only
those tensors. Sharded tensors are scored by all ranks of their mesh together (``sharded``).
Before any scoring the ranks check that they agree on the options and the list of tensors; a failure
on one rank reaches every rank (``collectives.all_or_none``).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable
from dataclasses import asdict, replace

import torch.distributed as dist
from torch import nn

from qubd.checkpoints import TensorSource, open_source, skip_reason
from qubd.distributed.collectives import all_gather_json, all_or_none, check_agreement
from qubd.distributed.sharded import is_sharded, score_sharded, sharded_weight
from qubd.layouts import DEFAULT
from qubd.report.errors import ReportError
from qubd.report.options import EXPECTED, NONE, ScoreOptions
from qubd.report.report import Report
from qubd.report.scores import TensorScore
from qubd.report.scoring import score_entries
from qubd.report.serialize import tensor_from_dict, tensor_to_dict


def is_distributed_model(obj: object) -> bool:
    """Whether ``obj`` is a module that every rank of the default process group scores together: a
    DDP-wrapped model, or one holding DTensor parameters (FSDP2, tensor parallel)."""
    if not isinstance(obj, nn.Module) or not (dist.is_available() and dist.is_initialized()):
        return False
    if isinstance(obj, nn.parallel.DistributedDataParallel):
        return True
    return any(is_sharded(p) for p in obj.parameters())


def score_model(
    model: nn.Module,
    options: ScoreOptions,
    include: str | Iterable[str] | None,
    exclude: str | Iterable[str] | None,
) -> Report:
    """The Report of a DDP / FSDP2 / tensor-parallel model; every rank of the default group calls it.
    A DDP model is scored as its ``module``: the names, and so the baselines' seeds, of the model
    scored in one process."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    with open_source(model, include, exclude) as source:
        return score_distributed(source, options)


def score_distributed(source: TensorSource, options: ScoreOptions, progress: bool = False) -> Report:
    """Score ``source`` with every rank of the default group (see the module docstring)."""
    started = time.perf_counter()
    entries = source.entries
    eligible = [
        i for i, e in enumerate(entries) if e.skipped is None and skip_reason(e.shape, e.dtype) is None
    ]
    views = {i: entries[i].load() for i in eligible} if source.is_module else {}
    sharded_at = [i for i in eligible if is_sharded(views.get(i))]
    check_agreement("the options", _options_key(options))
    check_agreement(
        "the tensors to score",
        [[e.name, list(e.shape), e.dtype, e.skipped, i in sharded_at] for i, e in enumerate(entries)],
    )
    if not eligible:
        raise ReportError(f"{source.description}: no eligible tensors")
    if sharded_at:
        _check_sharded_options(options, entries[sharded_at[0]].name)
    sharded = {i: sharded_weight(entries[i].name, views[i]) for i in sharded_at}
    del views
    replicated = [i for i in eligible if i not in sharded]
    owners = balance([entries[i].numel for i in replicated], dist.get_world_size())
    mine = {i for i, owner in zip(replicated, owners, strict=True) if owner == dist.get_rank()}
    results: dict[int, dict] = {}
    with all_or_none():
        if mine:
            assigned = [e if i in mine else replace(e, skipped=_ELSEWHERE) for i, e in enumerate(entries)]
            scores = score_entries(assigned, options, progress)
            results = {i: tensor_to_dict(scores[i], options) for i in mine}
    for n, (i, weight) in enumerate(sharded.items()):
        record = TensorScore(entries[i].name, entries[i].shape, entries[i].dtype)
        score = score_sharded(weight, record, options, owner=n % dist.get_world_size(weight.group))
        if score is not None:
            results[i] = tensor_to_dict(score, options)
    merged: dict[int, dict] = {}
    for part in all_gather_json({str(i): r for i, r in results.items()}):
        merged.update({int(i): r for i, r in part.items()})
    tensors = []
    for i, entry in enumerate(entries):
        if i in merged:
            tensors.append(tensor_from_dict(merged[i], options))
        else:
            reason = entry.skipped or skip_reason(entry.shape, entry.dtype)
            tensors.append(TensorScore(entry.name, entry.shape, entry.dtype, reason))
    report = Report(
        source=source.description,
        options=options,
        tensors=tensors,
        device=str(options.torch_device()),
        excluded=source.excluded,
        seconds=time.perf_counter() - started,
    )
    if not report.scored:
        raise ReportError(f"{source.description}: no tensor could be scored")
    return report


# The baselines computed on sharded tensors without gathering them.
SHARDED_BASELINES = (EXPECTED, NONE)

# The skip reason a rank gives the tensors other ranks score (never seen in a report).
_ELSEWHERE = "scored by another rank"


def balance(sizes: list[int], ranks: int) -> list[int]:
    """A rank for each job, largest first to the least loaded rank (ties: lower rank), so the loads
    are within the largest job of each other. Deterministic: equal on every rank."""
    loads = [(0, r) for r in range(ranks)]
    owners = [0] * len(sizes)
    for job in sorted(range(len(sizes)), key=lambda j: (-sizes[j], j)):
        load, rank = heapq.heappop(loads)
        owners[job] = rank
        heapq.heappush(loads, (load + sizes[job], rank))
    return owners


def _options_key(options: ScoreOptions) -> dict:
    return {k: v for k, v in asdict(options).items() if k != "device"}


def _check_sharded_options(options: ScoreOptions, name: str) -> None:
    """What needs a whole tensor in one process is refused for sharded ones, before any scoring."""
    if options.baseline not in SHARDED_BASELINES:
        raise ReportError(
            f"tensor '{name}' is sharded over ranks: the '{options.baseline}' baseline needs the whole "
            "tensor in one process; use baseline='expected' (the default) or 'none' on a sharded model "
            "(or score a gathered copy)"
        )
    if options.binary or options.compressors or options.manifold:
        raise ReportError(
            f"tensor '{name}' is sharded over ranks: the binary, compression and manifold measures need "
            "the whole tensor in one process; leave them out on a sharded model"
        )
    if options.layout != DEFAULT:
        raise ReportError(
            f"tensor '{name}' is sharded over ranks: layout '{options.layout}' needs the whole tensor "
            "in one process; use layout 'default' on a sharded model"
        )
