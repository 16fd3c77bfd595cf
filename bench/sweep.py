"""Suites and ablation grids: expand (tasks x method choices x seeds) into cells and run them.

The local executor runs cells one at a time in this process. Each finished cell is
appended to the run's records at once; a failing cell is recorded with its error and the
sweep goes on; cells already finished in the run folder are skipped (resume).
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import harness, registry
from bench.store import Cell, Record, RunStore, stable_hash
from bench.tasks.base import RunContext, get_task


@dataclass(frozen=True)
class Suite:
    scale: str
    seeds: int
    description: str


SUITES: dict[str, Suite] = {
    "quick": Suite("quick", 3, "smoke test of every cell; CI compares it with reports/baseline"),
    "default": Suite("default", 3, "real results on the embedded data (python run_all.py)"),
    "full": Suite("full", 5, "paper scale, meant for a GPU or a cluster"),
}


def parse_methods(spec: str | None) -> dict[str, list[str]]:
    """``"calibrator=none,calibrator=temperature,classifier=cnn"`` -> {family: [names]}."""
    selected: dict[str, list[str]] = {}
    if not spec:
        return selected
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        family, sep, name = item.partition("=")
        if not sep or not family or not name:
            raise ValueError(
                f"--methods item {item!r} is not family=name (e.g. calibrator=temperature)"
            )
        family, name = family.strip(), name.strip()
        axis = _axis_values(family)
        if axis is None:
            registry.get(family, name)  # unknown names fail here, listing known ones
        elif name not in axis:
            raise ValueError(f"unknown {family} {name!r}; known {family} values: {', '.join(axis)}")
        selected.setdefault(family, []).append(name)
    return selected


def _axis_values(family: str) -> list[str] | None:
    """Values of a non-method axis that some task declares (e.g. language), else None."""
    values: list[str] = []
    for name in registry.names("task"):
        values += get_task(name).axes.get(family, ())
    return list(dict.fromkeys(values)) or None


def expand(
    suite: str,
    tasks: list[str] | None = None,
    seeds: int | None = None,
    selected: dict[str, list[str]] | None = None,
    data: dict[str, Path] | None = None,
) -> list[Cell]:
    """The cells of ``suite`` restricted to ``tasks`` and the ``selected`` methods.

    ``data`` maps real-corpus names to paths; each must be read by a selected task, and
    the tasks that read one get its path in their cells' config.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; known suites: {', '.join(SUITES)}")
    spec = SUITES[suite]
    task_names = tasks or [n for n in registry.names("task") if get_task(n).in_suites]
    for name in task_names:
        if not get_task(name).in_suites:
            raise ValueError(f"task {name!r} is not part of any suite; it has its own sub-command")
    n_seeds = spec.seeds if seeds is None else seeds
    if n_seeds < 1:
        raise ValueError(f"--seeds must be at least 1 (got {n_seeds})")
    selected = selected or {}
    task_objs = [get_task(name) for name in task_names]
    used = {family for task in task_objs for family in task.families}
    unused = sorted(set(selected) - used)
    if unused:
        raise ValueError(
            f"--methods names family {', '.join(unused)}, which no selected task uses; "
            f"the selected tasks use: {', '.join(sorted(used))}"
        )
    data = data or {}
    readers = {name for task in task_objs for name in task.accepts_data}
    unread = sorted(set(data) - readers)
    if unread:
        raise ValueError(
            f"--data {', '.join(unread)}: no selected task reads this corpus "
            f"(the selected tasks read: {', '.join(sorted(readers)) or 'only the embedded data'})"
        )
    cells: list[Cell] = []
    for task in task_objs:
        narrowed = {f: names for f, names in selected.items() if f in task.families}
        task_seeds = n_seeds if seeds is not None else task.suite_seeds.get(suite, n_seeds)
        task_cells = task.cells(spec.scale, list(range(task_seeds)), narrowed)
        corpora = {k: str(v) for k, v in data.items() if k in task.accepts_data}
        if corpora:
            task_cells = [replace(c, config={**c.config, "data": corpora}) for c in task_cells]
        cells.extend(task_cells)
    return cells


@dataclass
class SweepSummary:
    ran: list[Cell] = field(default_factory=list)
    skipped: list[Cell] = field(default_factory=list)
    failed: list[tuple[Cell, str]] = field(default_factory=list)


_DATA_HASHES: dict[tuple[str, str], str | None] = {}


def _data_hash(task, config: dict) -> str | None:
    """The task's data hash for ``config``, computed once per process."""
    key = (task.name, stable_hash(config))
    if key not in _DATA_HASHES:
        try:
            _DATA_HASHES[key] = task.data_hash(config)
        except Exception:  # bad data fails the cell itself, with its own message
            return None
    return _DATA_HASHES[key]


def new_record(cell: Cell, run_id: str, env: dict, **fields) -> Record:
    """The record of ``cell`` before it runs (``fields`` set status, error, started...)."""
    task = get_task(cell.task)
    return Record(
        run_id=run_id,
        task=cell.task,
        method=dict(cell.method),
        config=cell.config,
        seed=cell.seed,
        scale=cell.scale,
        env={**env, "task_version": task.version, "data_hash": _data_hash(task, cell.config)},
        cell_key=cell.key,
        **fields,
    )


def run_cell(cell: Cell, ctx: RunContext, run_id: str, env: dict) -> Record:
    """Run one cell and return its record; an exception becomes a failed record."""
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    task = get_task(cell.task)
    record = new_record(cell, run_id, env, started=started)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            harness.seed_everything(cell.seed)
            result = task.run(cell, ctx)
            record.metrics, record.curves = result.metrics, result.curves
            record.timing = result.timing
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # recorded, and the sweep goes on
            record.status = "failed"
            tail = "".join(traceback.format_exception(exc)[-3:]).strip()
            record.error = f"{type(exc).__name__}: {exc}\n{tail}"
    record.warnings = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    record.seconds = time.perf_counter() - t0
    return record


def run_cells(
    cells: list[Cell],
    ctx: RunContext,
    run_id: str,
    executor: str = "local",
    jobs: int = 1,
    ray_address: str | None = None,
) -> SweepSummary:
    """Run the cells not yet finished in ``ctx.run_dir``; append one record per cell.

    ``executor`` "local" runs in this process (``jobs`` > 1: a process pool); "ray" runs
    one Ray task per cell (bench.executors). Records are appended here as cells finish.
    """
    store = RunStore(ctx.run_dir)
    done = store.completed_keys()
    summary = SweepSummary()
    pending = [c for c in cells if c.key not in done]
    summary.skipped = [c for c in cells if c.key in done]
    env = harness.capture_env(ctx.device)
    env["probe_gflops"] = harness.measured_peak_flops(ctx.device) / 1e9  # speed reference
    bar = ctx.progress(total=len(pending), desc="cells", unit="cell", leave=True)
    for cell, record in _results(pending, ctx, run_id, env, executor, jobs, ray_address, bar):
        bar.update(1)
        store.append(record)
        summary.ran.append(cell)
        for warning in record.warnings:
            if not ctx.quiet:
                bar.write(f"warning in {cell.label}: {warning}")
        if record.status != "ok":
            summary.failed.append((cell, record.error or ""))
            bar.write(f"FAILED {cell.label}: {(record.error or '').splitlines()[0]}")
    return summary


def _results(pending, ctx, run_id, env, executor, jobs, ray_address, bar):
    """(cell, record) pairs as the chosen executor finishes them."""
    from bench import executors

    if executor not in executors.EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; known: {', '.join(executors.EXECUTORS)}")
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1 (got {jobs})")
    if executor == "ray":
        yield from executors.run_ray(pending, ctx, run_id, env, ray_address)
    elif jobs > 1:
        yield from executors.run_pool(pending, ctx, run_id, env, jobs)
    else:
        for cell in pending:
            bar.set_postfix_str(cell.label)
            yield cell, run_cell(cell, ctx, run_id, env)


def default_run_dir(suite: str, cells: list[Cell], device: str, amp: str) -> Path:
    """``reports/<suite>-<hash>``: the same command maps to the same folder, so it resumes."""
    from bench.store import stable_hash

    digest = stable_hash({"cells": sorted(c.key for c in cells), "device": device, "amp": amp}, 8)
    return Path("reports") / f"{suite}-{digest}"
