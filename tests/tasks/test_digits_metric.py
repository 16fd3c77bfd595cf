"""The digits metric-learning task: its split, grid, items and a tiny end-to-end run."""

import json

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.context import RunContext
from bench.store import Cell
from bench.tasks import digits_metric
from bench.tasks.base import get_task

TINY = {"steps": 3, "classes_per_batch": 2, "samples_per_class": 2, "channels": 4, "eval_every": 2}


def test_train_and_test_classes_are_disjoint_and_cover_the_digits():
    data = digits_metric.digits_by_class()
    (x_tr, y_tr, i_tr), (x_te, y_te, i_te) = data["train"], data["test"]
    assert set(np.unique(y_tr)) == {0, 1, 2, 3, 4}
    assert set(np.unique(y_te)) == {5, 6, 7, 8, 9}
    assert len(y_tr) + len(y_te) == len(x_tr) + len(x_te) == 1797
    assert sorted(np.concatenate([i_tr, i_te]).tolist()) == list(range(1797))
    assert tuple(x_tr.shape[1:]) == (1, 8, 8) and float(x_tr.max()) <= 1.0


def test_grid_has_each_loss_once_and_the_baseline():
    rows = get_task("digits_metric").grid(scale="quick")
    assert rows[0] == {"loss": "-", "miner": "-"}
    assert sorted(r["loss"] for r in rows) == sorted(
        ["-", "contrastive", "ntxent", "triplet", "proxy_nca", "proxy_anchor"]
    )
    assert [r["miner"] for r in rows if r["loss"] == "triplet"] == ["semihard"]


@pytest.mark.parametrize(
    "method", [{"loss": "-", "miner": "-"}, {"loss": "triplet", "miner": "semihard"}]
)
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    method, tmp_path, check_task_cell
):
    check_task_cell("digits_metric", method, TINY, tmp_path)


def test_items_are_the_unseen_images_by_dataset_index():
    task = get_task("digits_metric")
    cell = Cell("digits_metric", {"loss": "proxy_nca", "miner": "-"}, 0, "quick", TINY)
    result = task.run(cell, RunContext(device=torch.device("cpu"), quiet=True).for_cell(0))
    test = result.items["test"]
    _, labels, index = digits_metric.digits_by_class()["test"]
    assert test["item_id"].tolist() == [str(i) for i in index]
    assert np.array_equal(test["label"], labels)
    assert test["embedding"].shape[0] == len(index)  # the trials are rebuilt from these
    assert result.metrics["recall_at_1"] == np.mean(test["rank"] == 1)


def test_task_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setitem(digits_metric.SCALE_CONFIGS, "quick", TINY)
    out = tmp_path / "run"
    main(["--tasks", "digits_metric", "--suite", "quick", "--quiet", "--out", str(out)])
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 6
    for r in records:
        assert r["status"] == "ok", r.get("error")
        assert 0.0 <= r["metrics"]["recall_at_1"] <= 1.0
        assert 0.0 <= r["metrics"]["eer"] <= 1.0
        trained = r["method"]["loss"] != "-"
        assert r["curves"]["step"] == ([0, 2, 3] if trained else [0])
    # same seed, same untrained network: the step-0 value is shared by every row
    assert len({r["curves"]["test_recall_at_1"][0] for r in records}) == 1
