"""The layering rules of the code, checked on its source with the standard library's ast:
no import circle between modules of bench/ and methods/, and tasks import only downward."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "methods")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))
    }


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (at any depth of the file: function-level
    imports count too, since they are circles all the same)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in graph.items() for b in targets}


def test_no_import_circles():
    graph = import_graph()
    # a package's __init__ importing its own submodules is how packages work, not a circle
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    assert _cycles(graph) == []


def test_tasks_import_only_downward():
    graph = import_graph()
    for module, targets in graph.items():
        if not module.startswith("bench.tasks."):
            continue
        sideways = sorted(
            t for t in targets if t.startswith("bench.tasks") and t != "bench.tasks.base"
        )
        upward = sorted(
            t for t in targets if t.startswith(("bench.report", "bench.cli", "bench.sweep"))
        )
        assert not sideways, f"{module} imports other tasks: {sideways}"
        assert not upward, f"{module} imports layers above the tasks: {upward}"


def test_lower_layers_do_not_import_tasks_or_report():
    graph = import_graph()
    lower = ("methods", "bench.models", "bench.metrics", "bench.data", "bench.training")
    for module, targets in graph.items():
        if module.startswith(lower):
            bad = sorted(
                t for t in targets if t.startswith(("bench.tasks", "bench.report", "bench.cli"))
            )
            assert not bad, f"{module} (a lower layer) imports {bad}"


def test_files_stay_small():
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in _modules().values()
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert too_long == {}
    tasks = {
        p.name: n
        for p in (ROOT / "bench" / "tasks").glob("*.py")
        if (n := len(p.read_text().splitlines())) > 250
    }
    assert tasks == {}


def test_methods_are_built_only_through_the_registry():
    offenders = []
    for name, path in _modules().items():
        if name == "bench.registry":
            continue
        if "registry.get(" in path.read_text():
            offenders.append(name)
    assert offenders == []
