"""The run folder's dataset_card.md: one section per task describing the data it used.

Written when a run starts (from each task's ``dataset_card(config)``) and read back by the
report, which shows each task's section beside its table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from bench.store import Cell, write_atomic
from bench.tasks.base import Task, get_task

CARD_FILE = "dataset_card.md"


def write_dataset_cards(
    run_dir: str | Path, cells: Iterable[Cell], task_of: Callable[[str], Task] = get_task
) -> Path | None:
    """Write dataset_card.md for the tasks of ``cells`` (each task at its first cell's config);
    returns its path, or None when no task has a card."""
    sections = []
    for task_name, config in {c.task: c.config for c in cells}.items():
        card = task_of(task_name).dataset_card(config)
        if card:
            sections.append(f"## {task_name}\n\n{card}\n")
    if not sections:
        return None
    path = Path(run_dir) / CARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "# Dataset card\n\n" + "\n".join(sections))
    return path


def card_section(run_dir: str | Path, task_name: str) -> str | None:
    """The task's section of dataset_card.md, if any."""
    path = Path(run_dir) / CARD_FILE
    if not path.exists():
        return None
    for block in path.read_text().split("\n## ")[1:]:
        title, _, body = block.partition("\n")
        if title.strip() == task_name:
            return body.strip()
    return None
