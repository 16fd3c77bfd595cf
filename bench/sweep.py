"""Suites and ablation grids: expand (tasks x method choices x seeds) into cells and run them.

Cells run through an executor (bench.executors) and bench.cells.run_cell; this module
writes their items and records as they finish. Each finished cell is
appended to the run's records at once; a failing cell is recorded with its error and the
sweep goes on; cells already finished in the run folder are skipped (resume).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import executors, harness, registry, tensorboard_log, tuning
from bench.cells import run_cell
from bench.context import RunContext
from bench.data.checks import check_corpora
from bench.eta import CellTimes
from bench.store import Cell, Record, RunStore, stable_hash, write_items
from bench.tasks.base import get_task
from bench.tuned_stage import TunedStage


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
            registry.check(family, name)  # unknown names fail here, listing known ones
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
    check_data: bool = True,
) -> list[Cell]:
    """The cells of ``suite`` restricted to ``tasks`` and the ``selected`` methods.

    ``data`` maps real-corpus names to paths; each must be read by a selected task, and
    the tasks that read one get its path in their cells' config. Each corpus is indexed
    here (``check_corpora``: layout and audio headers, no decoding) so a bad one fails in
    seconds, not in every cell; ``check_data=False`` skips that for a caller that checked.
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
    if check_data:
        check_corpora(data)
    cells: list[Cell] = []
    for task in task_objs:
        narrowed = task.suite_methods.get(suite, {}) | {
            f: names for f, names in selected.items() if f in task.families
        }
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


def run_cells(
    cells: list[Cell],
    ctx: RunContext,
    run_id: str,
    executor: str = "local",
    jobs: int = 1,
    ray_address: str | None = None,
    follow: Callable[[Record | None], list[Cell]] | None = None,
) -> SweepSummary:
    """Run the cells not yet finished in ``ctx.run_dir``; append one record per cell.

    ``executor`` "local" runs in this process (``jobs`` > 1: a process pool); "ray" runs
    one Ray task per cell (bench.executors). Records are appended here as cells finish.
    ``follow`` (called with ``None`` first, then with each stored record) returns cells to
    run as well: they join the same executor's queue (bench.tuned_stage).
    """
    store = RunStore(ctx.run_dir)
    done = store.completed_keys()
    summary = SweepSummary()
    pending: list[Cell] = []
    times = CellTimes()  # the bar counts expected seconds of work: an ETA that means it
    expected: dict[str, float] = {}
    env = harness.capture_env(ctx.device)
    env["probe_gflops"] = harness.measured_peak_flops(ctx.device) / 1e9  # speed reference
    bar = ctx.progress(
        total=0,
        desc="cells 0/0",
        bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]{postfix}",
        leave=True,
    )

    def add(new: list[Cell]) -> None:
        summary.skipped += [c for c in new if c.key in done]
        todo = [c for c in new if c.key not in done]
        expected.update({c.key: times.expected(c) for c in todo})
        pending.extend(todo)  # the executor hands out what is appended, as it appears
        bar.total += sum(expected[c.key] for c in todo)
        bar.set_description_str(f"cells {len(summary.ran)}/{len(pending)}", refresh=False)

    add(list(cells) + (follow(None) if follow else []))
    for cell, outcome in _results(pending, ctx, run_id, env, executor, jobs, ray_address, bar):
        record = outcome.record
        if record.status == "ok":
            times.record(cell, record.seconds)
        if outcome.items:  # the items first: a record never points at missing items
            write_items(ctx.run_dir, record.cell_key, outcome.items)
        store.append(record)
        if ctx.tensorboard:
            tensorboard_log.write_record(ctx.run_dir, record)
        summary.ran.append(cell)
        for warning in record.warnings:
            if not ctx.quiet:
                bar.write(f"warning in {cell.label}: {warning}")
        if record.status != "ok":
            summary.failed.append((cell, record.error or ""))
            bar.write(f"FAILED {cell.label}: {(record.error or '').splitlines()[0]}")
        if follow:
            add(follow(record))
        bar.set_description_str(f"cells {len(summary.ran)}/{len(pending)}", refresh=False)
        bar.update(expected[cell.key])
    return summary


def tuned_after(cells: list[Cell]) -> int:
    """The number of tuned cells ``run_staged`` adds to ``cells`` after their trials."""
    return tuning.tuned_count(cells, get_task)


def run_staged(cells: list[Cell], ctx: RunContext, run_id: str, **executor) -> SweepSummary:
    """``run_cells`` with the tuned cells (bench.tuning) queued as each task's trials
    finish (bench.tuned_stage), so a resumed run re-derives the same choice from its
    stored trial records."""
    stage = TunedStage(cells, ctx, run_id)
    summary = run_cells(cells, ctx, run_id, follow=stage.follow, **executor)
    summary.ran += stage.copied
    summary.skipped += stage.kept
    return summary


def _results(pending, ctx, run_id, env, executor, jobs, ray_address, bar):
    """(cell, CellRun) pairs as the chosen executor finishes them."""
    if executor not in executors.EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; known: {', '.join(executors.EXECUTORS)}")
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1 (got {jobs})")
    if executor == "ray":
        yield from executors.run_ray(pending, ctx, run_id, env, ray_address)
    elif jobs > 1:
        yield from executors.run_pool(pending, ctx, run_id, env, jobs)
    else:
        feed = executors.Feed(pending)
        while next_cell := feed.take(1):
            bar.set_postfix_str(next_cell[0].label)
            yield next_cell[0], run_cell(next_cell[0], ctx, run_id, env)


def default_run_dir(suite: str, cells: list[Cell], device: str, amp: str) -> Path:
    """``reports/<suite>-<hash>``: the same command maps to the same folder, so it resumes."""
    digest = stable_hash({"cells": sorted(c.key for c in cells), "device": device, "amp": amp}, 8)
    return Path("reports") / f"{suite}-{digest}"
