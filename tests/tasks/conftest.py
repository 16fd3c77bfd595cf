"""Shared checks for every task: a cell at a tiny config is deterministic, and its
aggregate metrics are what its per-item results give."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.cells import run_cell
from bench.context import RunContext
from bench.metrics.weighted import evaluate
from bench.store import Cell, read_items, write_items
from bench.tasks.base import get_task


def run_tiny(task_name: str, method: dict[str, str], config: dict, run_dir: Path, seed: int = 0):
    """Run one cell through the harness (seeded once, as in a sweep); return the CellRun."""
    cell = Cell(task=task_name, method=method, seed=seed, scale="quick", config=config)
    ctx = RunContext(device=torch.device("cpu"), run_dir=run_dir, quiet=True)
    outcome = run_cell(cell, ctx, "test", {})
    assert outcome.record.status == "ok", outcome.record.error
    return outcome


def assert_deterministic_and_items(
    task_name: str, method: dict[str, str], config: dict, tmp_path: Path
) -> None:
    """Run the cell twice in fresh run folders: identical metrics; items written and read
    back give the metrics the task reported (for every metric they determine)."""
    first = run_tiny(task_name, method, config, tmp_path / "a")
    second = run_tiny(task_name, method, config, tmp_path / "b")
    assert first.record.metrics == second.record.metrics
    assert first.items, f"{task_name} returned no per-item results"
    write_items(tmp_path / "a", first.record.cell_key, first.items)
    items = read_items(tmp_path / "a", first.record.cell_key)
    for split, columns in items.items():
        assert "item_id" in columns and len(columns["item_id"]) > 0, split
    recomputed = get_task(task_name).metrics_from_items(items, config)
    assert recomputed, f"{task_name}.metrics_from_items gave nothing"
    for name, value in recomputed.items():
        reported = first.record.metrics[name]
        if math.isnan(value):
            assert math.isnan(reported), name
        else:
            assert reported == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert_item_forms(task_name, items, config)


def assert_item_forms(task_name: str, items, config: dict) -> None:
    """Each item form gives the task's metric: with every weight 1, the metric of the test
    set; with bootstrap counts, the metric of the resampled (duplicated) items."""
    task = get_task(task_name)
    forms = task.item_forms(config)
    rng = np.random.default_rng(0)
    draws = {s: rng.integers(0, len(c["item_id"]), len(c["item_id"])) for s, c in items.items()}
    resampled = {s: {k: np.asarray(v)[draws[s]] for k, v in c.items()} for s, c in items.items()}
    full, sub = task.metrics_from_items(items, config), task.metrics_from_items(resampled, config)
    for name, form in forms.items():
        if form.split not in items:
            continue
        n = len(items[form.split]["item_id"])
        counts = np.bincount(draws[form.split], minlength=n)[None, :].astype(float)
        got = evaluate(form, items, np.ones((1, n)))
        if got is None:  # a column this cell does not write (its metric is absent too)
            assert name not in full, name
            continue
        again = evaluate(form, items, counts)
        assert again is not None and name in full, name
        for value, want in ((got[0], full[name]), (again[0], sub[name])):
            if math.isnan(want):
                assert math.isnan(value), name
            else:
                assert value == pytest.approx(want, rel=1e-9, abs=1e-12), name


@pytest.fixture
def check_task_cell():
    """``check_task_cell(task_name, method, tiny_config, tmp_path)``: see
    ``assert_deterministic_and_items``."""
    return assert_deterministic_and_items
