"""Run one cell: seed it once, call its task, time it, and return its Record and items.

This is the layer between the executors (where cells run) and the tasks (what a cell
does). A task's exception becomes a failed record with its error, so the sweep goes on.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

from bench import harness
from bench.context import RunContext
from bench.store import Cell, Record, stable_hash
from bench.tasks.base import Items, Task, get_task


@dataclass
class CellRun:
    """A finished cell: its record and the per-item results its metrics are made of."""

    record: Record
    items: Items = field(default_factory=dict)


_DATA_HASHES: dict[tuple[str, str], str | None] = {}


def data_hash(task: Task, config: dict) -> str | None:
    """The task's data hash for ``config``, computed once per process."""
    key = (task.name, stable_hash(config))
    if key not in _DATA_HASHES:
        try:
            _DATA_HASHES[key] = task.data_hash(config)
        except Exception:  # bad data fails the cell itself, with its own message
            return None
    return _DATA_HASHES[key]


def new_record(cell: Cell, run_id: str, env: dict, **fields: Any) -> Record:
    """The record of ``cell`` before it runs (``fields`` set status, error, started...)."""
    task = get_task(cell.task)
    return Record(
        run_id=run_id,
        task=cell.task,
        method=dict(cell.method),
        config=cell.config,
        seed=cell.seed,
        scale=cell.scale,
        env={**env, "task_version": task.version, "data_hash": data_hash(task, cell.config)},
        cell_key=cell.key,
        **fields,
    )


def run_cell(cell: Cell, ctx: RunContext, run_id: str, env: dict) -> CellRun:
    """Seed python/numpy/torch with the cell's seed, run its task, and wrap the result."""
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    task = get_task(cell.task)
    record = new_record(cell, run_id, env, started=started)
    items: Items = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            harness.seed_everything(cell.seed)  # the only place a cell is seeded
            threads = task.cpu_threads if ctx.device.type == "cpu" else None
            with harness.torch_threads(threads):
                result = task.run(cell, ctx.for_cell(cell.seed))
            record.metrics, record.curves = result.metrics, result.curves
            record.timing = result.timing
            items = result.items
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # recorded, and the sweep goes on
            record.status = "failed"
            tail = "".join(traceback.format_exception(exc)[-3:]).strip()
            record.error = f"{type(exc).__name__}: {exc}\n{tail}"
    record.warnings = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    record.seconds = time.perf_counter() - t0
    return CellRun(record, items)
