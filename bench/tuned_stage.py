"""The tuned cells of a run, added while it runs: a task's ``hp=tuned`` cells (bench.tuning)
join the queue as soon as that task's first-stage cells (its trials among them) have all
finished, so the workers never wait at a barrier between the stages and keep their caches.

A tuned cell whose computation already ran (``tuning.already_ran``: the chosen trial at
seed 0, the default row at every seed when its defaults win) is not queued: its record is
a copy of that cell's record and items, marked ``env.reused_from``. A resumed run derives
the same tuned cells from the stored records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from bench import tuning
from bench.context import RunContext
from bench.store import Cell, Record, RunStore, read_items, write_items
from bench.tasks.base import get_task

__all__ = ["TunedStage"]


class TunedStage:
    """``follow`` for bench.sweep.run_cells: called once before the run (``None``) and after
    each stored record, it returns the tuned cells of every task that has just finished
    its first stage."""

    def __init__(self, cells: list[Cell], ctx: RunContext, run_id: str) -> None:
        self.ctx, self.run_id = ctx, run_id
        self.first = {c.key for c in cells}  # this invocation's, not other runs' in the folder
        self.waiting: dict[str, set[str]] = {}  # task -> first-stage keys not yet finished
        self.cells: dict[str, list[Cell]] = {}
        for cell in cells:
            if get_task(cell.task).tuning is not None:
                self.waiting.setdefault(cell.task, set()).add(cell.key)
                self.cells.setdefault(cell.task, []).append(cell)
        self.copied: list[Cell] = []  # tuned cells recorded as copies by this invocation
        self.kept: list[Cell] = []  # ... and by an earlier one (a resumed run)

    def follow(self, record: Record | None) -> list[Cell]:
        if record is None:  # before the run: what an earlier invocation finished
            finished = RunStore(self.ctx.run_dir).completed_keys()
        else:
            finished = {record.cell_key}
        out: list[Cell] = []
        for task in list(self.waiting):
            self.waiting[task] -= finished
            if not self.waiting[task]:
                del self.waiting[task]
                out += self._tuned(task)
        return out

    def _tuned(self, task: str) -> list[Cell]:
        """The tuned cells of ``task`` still to run; the rest are copied here."""
        latest = RunStore(self.ctx.run_dir).latest()
        stored = [r for key, r in latest.items() if key in self.first]
        tuned = tuning.second_stage(self.cells[task], stored, get_task)
        sources = tuning.already_ran(tuned, stored)
        for cell in tuned:
            if cell.key not in sources:
                continue
            if cell.key in latest and latest[cell.key].status == "ok":
                self.kept.append(cell)
            else:
                self._copy(cell, sources[cell.key])
                self.copied.append(cell)
        return [c for c in tuned if c.key not in sources]

    def _copy(self, cell: Cell, source: Record) -> None:
        """Record ``cell`` as a copy of ``source`` (the same computation) and its items."""
        items = read_items(self.ctx.run_dir, source.cell_key)
        if items:  # the items first: a record never points at missing items
            write_items(self.ctx.run_dir, cell.key, items)
        RunStore(self.ctx.run_dir).append(
            replace(
                source,
                run_id=self.run_id,
                method=dict(cell.method),
                config=dict(cell.config),
                cell_key=cell.key,
                started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                seconds=0.0,  # nothing ran; the source record holds the computation's time
                env={**source.env, "reused_from": source.cell_key},
            )
        )
