"""What a task is: the contract between a benchmark task and the harness.

A task expands a suite scale into cells (one choice per method family and a seed), runs
one cell into a ``CellResult`` and, optionally, draws figures from its records. The
harness does the rest: seeding, device, timing helpers, storing, resuming and reporting.
Copy ``bench/tasks/calibration.py`` as the worked example.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from bench import harness, registry
from bench.store import Cell, Record

SCALES = ("quick", "default", "full")


@dataclass
class RunContext:
    """Everything a task may use from the harness while running one cell."""

    device: torch.device
    amp: str = "off"
    run_dir: Path = Path("reports/scratch")
    quiet: bool = False

    def progress(self, iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
        """A tqdm bar that respects --quiet and never outlives its loop."""
        kwargs.setdefault("leave", False)
        kwargs.setdefault("dynamic_ncols", True)
        return tqdm(iterable, disable=self.quiet, **kwargs)

    def autocast(self):
        return harness.autocast(self.device, self.amp)

    def artifact_dir(self, task: str) -> Path:
        path = self.run_dir / "artifacts" / task
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def peak_flops(self) -> float:
        return harness.measured_peak_flops(self.device, self.amp)


@dataclass
class CellResult:
    """What ``Task.run`` returns; the harness wraps it into a Record."""

    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list] = field(default_factory=dict)
    timing: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Figure:
    """One figure written by a task: file stem under figures/ and a caption."""

    stem: str
    caption: str


class Task:
    """Base class of benchmark tasks (subclass, set the class attributes, register)."""

    families: ClassVar[tuple[str, ...]] = ()  # method families that span the grid, in order
    defaults: ClassVar[dict[str, tuple[str, ...]]] = {}  # names per family in the suite grid
    baseline: ClassVar[dict[str, str]] = {}  # the choice paired tests compare against
    table_metrics: ClassVar[tuple[str, ...]] = ()
    headline: ClassVar[str | None] = None  # the summary page's metric (default: the first)
    title: ClassVar[str] = ""
    in_suites: ClassVar[bool] = True  # False: runs only through its own sub-command
    accepts_data: ClassVar[tuple[str, ...]] = ()  # real corpora it can use (--data NAME=PATH)
    axes: ClassVar[dict[str, tuple[str, ...]]] = {}  # non-method grid axes (e.g. language)
    suite_seeds: ClassVar[dict[str, int]] = {}  # seeds per suite where the suite's is too many
    version: ClassVar[int] = 1  # bump when a change makes old results incomparable (compare)

    @property
    def name(self) -> str:
        return self.registry_name  # type: ignore[attr-defined]

    def config(self, scale: str) -> dict[str, Any]:
        """The expanded configuration of this task at ``scale`` (goes into every record)."""
        raise NotImplementedError

    def grid(
        self, selected: dict[str, list[str]] | None = None, scale: str = "quick"
    ) -> list[dict[str, str]]:
        """All method combinations, optionally narrowed by ``--methods family=name``.

        ``scale`` is for tasks whose rows differ by scale; this default ignores it."""
        selected = selected or {}
        choices = []
        for family in self.families:
            names = selected.get(family) or list(self.defaults[family])
            for name in names:
                registry.get(family, name)  # fail early on an unknown name
            choices.append(names)
        return [
            dict(zip(self.families, combo, strict=True)) for combo in itertools.product(*choices)
        ]

    def cells(self, scale: str, seeds: list[int], selected=None) -> list[Cell]:
        config = self.config(scale)
        return [
            Cell(task=self.name, method=method, seed=seed, scale=scale, config=config)
            for method in self.grid(selected, scale)
            for seed in seeds
        ]

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        raise NotImplementedError

    def baseline_of(self, method: dict[str, str]) -> dict[str, str] | None:
        """The method a paired test compares ``method`` against (None: it is the baseline)."""
        if not self.baseline:
            return None
        base = {**method, **self.baseline}
        return None if base == method else base

    def data_hash(self, config: dict[str, Any]) -> str | None:
        """A short hash of the data behind ``config`` (its dataset card), for compare."""
        card = self.dataset_card(config)
        return None if card is None else hashlib.sha256(card.encode()).hexdigest()[:12]

    def dataset_card(self, config: dict[str, Any]) -> str | None:
        """Markdown describing the data this task used at ``config`` (None: no card)."""
        return None

    def figures(self, records: list[Record], fig_dir: Path) -> Iterator[Figure]:
        """Draw this task's figures from its records alone (no re-training)."""
        return iter(())


def get_task(name: str) -> Task:
    return registry.get("task", name)()
