"""The calibrate_logits task (``run_all.py calibrate --logits FILE``): its grid, its cells
per file, the file checks, and a cell's metrics from its per-row items. The sub-command
end to end is tested in tests/test_cli.py."""

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.cells import run_cell
from bench.context import RunContext
from bench.tasks.base import get_task
from bench.tasks.user_logits import file_sha256, load_logits_file


def overconfident_logits(path: Path, n: int = 400, k: int = 4, **extra) -> Path:
    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, (n, k))
    labels = np.array([rng.choice(k, p=np.exp(r) / np.exp(r).sum()) for r in true])
    np.savez(path, logits=3 * true, labels=labels, **extra)
    return path


def test_grid_is_the_calibrators_with_the_none_baseline():
    task = get_task("calibrate_logits")
    assert [r["calibrator"] for r in task.grid(None, "user")] == [
        "none",
        "temperature",
        "vector",
        "histogram",
        "isotonic",
    ]
    assert task.grid({"calibrator": ["isotonic"]}, "user") == [
        {"calibrator": "none"},
        {"calibrator": "isotonic"},
    ]
    assert task.baseline_of({"calibrator": "vector"}) == {"calibrator": "none"}
    with pytest.raises(ValueError, match="needs a file"):
        task.config("quick")


def test_cells_per_file_seed_and_split(tmp_path):
    task = get_task("calibrate_logits")
    f = overconfident_logits(tmp_path / "a.npz")
    cells = task.cells_for_file(f, 3, 0.5, {"calibrator": ["temperature"]})
    assert [(c.method["calibrator"], c.seed) for c in cells] == [
        (m, s) for m in ("none", "temperature") for s in (0, 1, 2)
    ]
    assert cells[0].config["sha256"] == file_sha256(f) and not cells[0].config["has_split"]
    assert task.data_hash(cells[0].config) != task.data_hash(
        task.cells_for_file(overconfident_logits(tmp_path / "b.npz", n=300), 1, 0.5)[0].config
    )
    split = np.where(np.arange(400) % 4 == 0, "valid", "test")
    with_split = task.cells_for_file(overconfident_logits(tmp_path / "s.npz", split=split), 3, 0.5)
    assert {c.seed for c in with_split} == {0} and with_split[0].config["has_split"]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"logits": np.zeros((4, 3))}, "missing array(s) labels"),
        ({"logits": np.zeros((4, 3)), "labels": np.zeros(5, int)}, "labels must be (N,)"),
        ({"logits": np.zeros((4, 3)), "labels": np.array([0, 1, 2, 3])}, "must lie in [0, 3)"),
        ({"logits": np.zeros((4, 3)), "labels": np.zeros(4, int), "split": np.ones(4)}, "at least"),
    ],
)
def test_bad_files_name_the_file_and_the_fix(tmp_path, arrays, message):
    f = tmp_path / "bad.npz"
    np.savez(f, **arrays)
    with pytest.raises(ValueError, match="bad.npz") as info:
        load_logits_file(f)
    assert message in str(info.value)


@pytest.mark.parametrize("calibrator", ["none", "temperature"])
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    calibrator, tmp_path, check_task_cell
):
    f = overconfident_logits(tmp_path / "model.npz")
    cell = get_task("calibrate_logits").cells_for_file(f, 1, 0.5)[0]
    check_task_cell("calibrate_logits", {"calibrator": calibrator}, cell.config, tmp_path)


def test_items_are_the_test_rows_of_the_file(tmp_path):
    split = np.where(np.arange(400) % 4 == 0, "valid", "test")
    f = overconfident_logits(tmp_path / "model.npz", split=split)
    cell = get_task("calibrate_logits").cells_for_file(f, 1, 0.5, {"calibrator": ["none"]})[0]
    run = run_cell(cell, RunContext(torch.device("cpu"), run_dir=tmp_path, quiet=True), "t", {})
    assert run.record.status == "ok", run.record.error
    items = run.items["test"]
    assert items["item_id"].tolist() == [f"row{i}" for i in range(400) if i % 4]
    assert run.record.metrics["accuracy"] == items["correct"].mean()
    # without a split each seed draws its own valid rows: other test rows, other items
    cells = get_task("calibrate_logits").cells_for_file(
        overconfident_logits(tmp_path / "n.npz"), 2, 0.5
    )
    ids = [
        set(
            run_cell(
                c, RunContext(torch.device("cpu"), run_dir=tmp_path, quiet=True), "t", {}
            ).items["test"]["item_id"]
        )
        for c in cells[:2]
    ]
    assert len(ids[0]) == 200 and ids[0] != ids[1]
