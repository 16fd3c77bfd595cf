"""Source hashes: a task's version is the hash of the code its results depend on.

asv's habit: a benchmark whose source changed is "not comparable" with older results.
Here the source is the task's module, what it imports within the layers that decide a
result (tasks, models, training, metrics, methods), and the modules of its methods.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path

VERSIONED_LAYERS = ("bench.tasks", "bench.models", "bench.training", "bench.metrics", "methods")
_SOURCE_HASHES: dict[frozenset[str], str] = {}


def _find(module: str):
    try:
        return importlib.util.find_spec(module)
    except (ImportError, AttributeError, ValueError):  # e.g. "pkg.module.Name"
        return None


def _local_imports(module: str) -> set[str]:
    spec = _find(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return set()
    tree = ast.parse(Path(spec.origin).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m.startswith(VERSIONED_LAYERS) and _find(m) is not None}


def source_hash(modules: set[str]) -> str:
    """Hash of the sources of ``modules`` and their imports within VERSIONED_LAYERS."""
    key = frozenset(modules)
    if key not in _SOURCE_HASHES:
        seen: set[str] = set()
        todo = sorted(modules)
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            todo += sorted(_local_imports(module) - seen)
        digest = hashlib.sha256()
        for module in sorted(seen):
            spec = _find(module)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                digest.update(module.encode() + b"\0" + Path(spec.origin).read_bytes())
        _SOURCE_HASHES[key] = digest.hexdigest()[:12]
    return _SOURCE_HASHES[key]
