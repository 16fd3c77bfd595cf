"""Which figures each task has: drawers register under task names, the report calls them.

A drawer is a function ``draw(records, fig_dir, formats=FORMATS) -> Iterable[Figure]`` in a
module of this package, decorated with ``@task_figures("task_name", ...)``. It draws from
the task's finished records alone (no re-training) and saves each figure with
``figures.save(fig, fig_dir, stem, formats)``. Tasks know nothing of their figures: the
dependency runs from the report down to the records, never from a task up to the report.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from bench.report.figures import FORMATS, Figure
from bench.store import Record

Drawer = Callable[..., Iterable[Figure]]

_DRAWERS: dict[str, dict[str, Drawer]] = {}  # task name -> {"module.function": drawer}


def task_figures(*tasks: str) -> Callable[[Drawer], Drawer]:
    """Register the decorated drawer for each task named (in the order decorated)."""
    if not tasks:
        raise TypeError("task_figures() needs at least one task name")

    def register(draw: Drawer) -> Drawer:
        key = f"{draw.__module__}.{draw.__qualname__}"  # a re-imported module replaces its own
        for task in tasks:
            _DRAWERS.setdefault(task, {})[key] = draw
        return draw

    return register


@functools.cache
def load_drawers() -> None:
    """Import every module of the ``bench.report`` package, so that all drawers register."""
    package = importlib.import_module("bench.report")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"bench.report.{module.name}")


def drawers(task: str) -> list[Drawer]:
    """The drawers registered for ``task`` ([] if it has no figures)."""
    load_drawers()
    return list(_DRAWERS.get(task, {}).values())


def tasks_with_figures() -> list[str]:
    """Every task name some drawer is registered for, sorted."""
    load_drawers()
    return sorted(name for name, registered in _DRAWERS.items() if registered)


def draw_task_figures(
    task: str, records: list[Record], fig_dir: Path, formats: Sequence[str] = FORMATS
) -> list[Figure]:
    """Draw every figure of ``task`` from its finished ``records`` into ``fig_dir``."""
    if not records:
        return []
    return [fig for draw in drawers(task) for fig in draw(records, Path(fig_dir), formats)]
