"""qubd.report's modules import one way (records -> JSON schema -> plots -> scoring, tracker): no module
reaches itself through its imports, counting imports inside functions and under TYPE_CHECKING."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import qubd.report

PACKAGE = "qubd.report"
ROOT = Path(qubd.report.__file__).parent


def module_name(path: Path) -> str:
    return PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"


def import_graph(root: Path) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports anywhere in its text."""
    modules = {module_name(p): p for p in root.glob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t not in (name, PACKAGE)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules, the first repeated at the end), or None (depth-first search)."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            cycle = visit(target, path + [node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node, [])
        if cycle:
            return cycle
    return None


def test_report_modules_import_one_way():
    graph = import_graph(ROOT)
    assert f"{PACKAGE}.scores" in graph and graph[f"{PACKAGE}.report"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle(tmp_path):
    (tmp_path / "a.py").write_text(f"from {PACKAGE}.b import x\n")
    (tmp_path / "b.py").write_text(f"def f():\n    from {PACKAGE} import a\n")
    (tmp_path / "c.py").write_text(f"import {PACKAGE}.a\n")
    cycle = find_cycle(import_graph(tmp_path))
    assert cycle == [f"{PACKAGE}.a", f"{PACKAGE}.b", f"{PACKAGE}.a"]


def test_the_records_and_schema_import_no_view():
    graph = import_graph(ROOT)
    views = {f"{PACKAGE}.{m}" for m in ("plots", "display", "frames", "report", "scoring", "tracker")}
    for module in ("scores", "serialize", "reference"):
        assert not graph[f"{PACKAGE}.{module}"] & views, module


def test_score_options_carry_keywords_over_the_options_given():
    from torch import nn

    from qubd.report import ComplexityTracker, ReportError, ScoreOptions

    tracker = ComplexityTracker(nn.Linear(4, 4), options=ScoreOptions(bits=4, seed=3), baseline="none")
    assert (tracker.options.bits, tracker.options.seed, tracker.options.baseline) == (4, 3, "none")
    assert ScoreOptions.of(bits=5) == ScoreOptions(bits=5)
    with pytest.raises(ReportError, match="bits"):
        ScoreOptions.of(ScoreOptions(), bits=0)


def test_importing_qubd_and_its_command_leaves_scipy_unimported():
    """scipy (~0.4 s to import) only where the closed-form baseline is computed."""
    code = "import sys, qubd, qubd.cli, qubd.report.table; print('scipy' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT.parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"
