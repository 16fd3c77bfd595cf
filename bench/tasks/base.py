"""What a task is: the contract between a benchmark task and the harness.

A task declares its grid as data (``rows`` per scale, its ``baseline``), builds its
config per scale, and runs one cell into a ``CellResult``: aggregate metrics, curves,
timing and the per-item scores the aggregates are made of. The harness does the rest:
seeding (once per cell, before ``run``), device, the training loop (``bench.training``),
storing, resuming and reporting. Copy ``bench/tasks/calibration.py`` as the worked example.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from bench import registry
from bench.context import RunContext
from bench.data import corpus_identity, synthetic
from bench.metrics.weighted import ItemForm
from bench.sources import source_hash
from bench.store import Cell, stable_hash
from bench.tuning import TuningSpec, trial_cells

__all__ = ["NONE", "SCALES", "CellResult", "RunContext", "Task", "get_task", "product"]

SCALES = ("quick", "default", "full")
NONE = "-"  # "no choice": a method family that does not apply to a row (e.g. no loss)

Items = dict[str, dict[str, np.ndarray]]  # split -> column -> one value per item


@dataclass
class CellResult:
    """What ``Task.run`` returns; the harness wraps it into a Record and an items file.

    ``items[split]`` holds one array per column (e.g. ``correct``, ``confidence``,
    ``edits``, ``ref_len``, ``pesq_wb``), all of one length, plus ``item_id``: a stable
    string id per item, so that two cells or two runs pair item by item. The aggregate
    ``metrics`` of a split are computed from these columns (a test checks it per task).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list] = field(default_factory=dict)
    timing: dict[str, float | None] = field(default_factory=dict)
    items: Items = field(default_factory=dict)


def product(**choices: Any) -> list[dict[str, str]]:
    """Grid rows: every combination of the given names, in the keyword order.

    ``product(classifier=("cnn", "mlp"), calibrator=("none", "temperature"))``"""
    keys = list(choices)
    values = [[v] if isinstance(v, str) else list(v) for v in choices.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


class Task:
    """Base class of benchmark tasks (subclass, set the class attributes, register)."""

    families: ClassVar[tuple[str, ...]] = ()  # grid columns: method families and axes, in order
    axes: ClassVar[dict[str, tuple[str, ...]]] = {}  # columns that are not registry families
    rows: ClassVar[dict[str, list[dict[str, str]]]] = {}  # per scale: the grid rows
    baseline: ClassVar[dict[str, str]] = {}  # what makes a row a baseline; others pair with it
    table_metrics: ClassVar[tuple[str, ...]] = ()
    headline: ClassVar[str | None] = None  # the summary page's metric (default: the first)
    title: ClassVar[str] = ""
    in_suites: ClassVar[bool] = True  # False: runs only through its own sub-command
    accepts_data: ClassVar[tuple[str, ...]] = ()  # real corpora it can use (--data NAME=PATH)
    suite_seeds: ClassVar[dict[str, int]] = {}  # seeds per suite where the suite's is too many
    # per suite, the methods it runs where the scale's rows are more than its time budget
    # holds, as --methods would select them ({family: names}); --methods or a sweep that
    # names a family replaces this for that family
    suite_methods: ClassVar[dict[str, dict[str, list[str]]]] = {}
    cpu_threads: ClassVar[int | None] = None  # torch threads of a cell on the CPU (None: as set)
    # equal tuning budgets (bench.tuning): trial cells per default row, then tuned rows
    tuning: ClassVar[TuningSpec | None] = None

    @property
    def name(self) -> str:
        return self.registry_name  # type: ignore[attr-defined]

    # ---- the grid -------------------------------------------------------------------
    def config(self, scale: str) -> dict[str, Any]:
        """The expanded configuration of this task at ``scale`` (goes into every record)."""
        raise NotImplementedError

    def rows_at(self, scale: str) -> list[dict[str, str]]:
        if scale not in self.rows:
            raise ValueError(
                f"task {self.name} has no rows at scale {scale!r}; it has: {', '.join(self.rows)}"
            )
        return [dict(r) for r in self.rows[scale]]

    def is_baseline(self, row: dict[str, str]) -> bool:
        return bool(self.baseline) and all(row.get(k) == v for k, v in self.baseline.items())

    def grid(
        self, selected: dict[str, list[str]] | None = None, scale: str = "quick"
    ) -> list[dict[str, str]]:
        """The rows of ``scale`` narrowed by ``--methods family=name``.

        For a method family, a row is kept when it uses a selected name, does not use the
        family (``-``), or is a baseline and the family is one that defines the baseline
        (kept for the paired tests). A selected name that no row uses (e.g. a new method)
        enters the grid in the place of every name of its family. Values selected for an
        axis (e.g. ``language``) replace the scale's values of that axis."""
        rows = self.rows_at(scale)
        for family, values in (selected or {}).items():
            if family not in self.families:
                continue
            if family in self.axes:
                rows = self._replace_values(rows, family, values)
                continue
            used = {r[family] for r in rows}
            kept = [
                r
                for r in rows
                if r[family] in values
                or r[family] == NONE
                or (family in self.baseline and self.is_baseline(r))
            ]
            new = [v for v in values if v not in used]
            trained = [r for r in rows if r[family] != NONE and not self.is_baseline(r)]
            added = self._replace_values(trained, family, new) if new else []
            rows = [dict(t) for t in dict.fromkeys(tuple(r.items()) for r in kept + added)]
        self.check_rows(rows)
        return rows

    def _replace_values(
        self, rows: list[dict[str, str]], family: str, values: list[str]
    ) -> list[dict[str, str]]:
        """Every distinct row of ``rows`` once per value of ``family`` in ``values``."""
        rest = [tuple((k, v) for k, v in r.items() if k != family) for r in rows]
        return [
            {k: (value if k == family else dict(r)[k]) for k in self.families}
            for r in dict.fromkeys(rest)
            for value in values
        ]

    def check_rows(self, rows: list[dict[str, str]]) -> None:
        """Every row names every column, with registered names or known axis values."""
        for row in rows:
            if list(row) != list(self.families):
                raise ValueError(
                    f"task {self.name}: row {row} does not have the columns {self.families}"
                )
            for family, value in row.items():
                if family in self.axes:
                    if value not in self.axes[family]:
                        known = ", ".join(self.axes[family])
                        raise ValueError(
                            f"unknown {family} {value!r}; known {family} values: {known}"
                        )
                elif value != NONE:
                    registry.check(family, value)  # an unknown name fails here, listing known ones

    def cells(self, scale: str, seeds: list[int], selected=None) -> list[Cell]:
        """The grid's cells at every seed, then (a task with ``tuning``) its tuning trials;
        the tuned cells come after the trials have run (``bench.tuning.second_stage``)."""
        config = self.config(scale)
        cells = [
            Cell(task=self.name, method=method, seed=seed, scale=scale, config=config)
            for method in self.grid(selected, scale)
            for seed in seeds
        ]
        return cells + trial_cells(self, cells)

    def baseline_of(self, method: dict[str, str]) -> dict[str, str] | None:
        """The row a paired test compares ``method`` against (None: it is a baseline)."""
        if not self.baseline or self.is_baseline(method):
            return None
        return {**method, **self.baseline}

    # ---- running --------------------------------------------------------------------
    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        """Run one cell. ``ctx`` is bound to the cell's seed (``ctx.rng()``,
        ``ctx.generator()``); the harness has already seeded python, numpy and torch."""
        raise NotImplementedError

    def metrics_from_items(self, items: Items, config: dict[str, Any]) -> dict[str, float]:
        """The aggregate metrics that are computed from per-item results, recomputed from
        ``items`` (``run`` computes them through this, and a test checks the identity)."""
        raise NotImplementedError

    def item_forms(self, config: dict[str, Any]) -> dict[str, ItemForm]:
        """The table metrics that resampling the test items can recompute, each as a
        function of item weights (``bench.metrics.weighted``), with the definitions of
        ``metrics_from_items``; paired tests over items use them. Default: none."""
        return {}

    # ---- comparability --------------------------------------------------------------
    @property
    def version(self) -> str:
        """A hash of the source this task's results depend on: its module and what it
        imports from the task, model, training, metric and method layers, and the modules
        of every method registered in its families. Changed code: not comparable."""
        modules = {type(self).__module__}
        for family in self.families:
            if family not in self.axes:
                modules |= {registry.module_of(family, n) for n in registry.names(family)}
        return source_hash(modules)

    def data_identity(self, config: dict[str, Any]) -> Any:
        """What fixes the data behind ``config``: goes into ``data_hash``. Default: the
        embedded corpus named by ``config["corpus"]`` (its config, generator version and
        file checksums), else the dataset card."""
        if "corpus" in config:
            return corpus_identity.identity(synthetic.ensure_corpus(config["corpus"]))
        return self.dataset_card(config)

    def data_hash(self, config: dict[str, Any]) -> str | None:
        """A short hash of ``data_identity`` (None: the task has no data identity)."""
        identity = self.data_identity(config)
        return None if identity is None else stable_hash(identity)

    def dataset_card(self, config: dict[str, Any]) -> str | None:
        """Markdown describing the data this task used at ``config`` (None: no card).
        Default: the card of the embedded corpus named by ``config["corpus"]``, if any."""
        if "corpus" in config:
            return synthetic.card(synthetic.ensure_corpus(config["corpus"]))
        return None


def get_task(name: str) -> Task:
    return registry.build("task", name)
