"""The digits metric-learning task: its split, grid and a tiny end-to-end run."""

import json

import numpy as np

from bench.cli import main
from bench.tasks import digits_metric
from bench.tasks.base import get_task

TINY = {"steps": 3, "classes_per_batch": 2, "samples_per_class": 2, "channels": 4, "eval_every": 2}


def test_train_and_test_classes_are_disjoint_and_cover_the_digits():
    data = digits_metric.digits_by_class()
    (x_tr, y_tr), (x_te, y_te) = data["train"], data["test"]
    assert set(np.unique(y_tr)) == {0, 1, 2, 3, 4}
    assert set(np.unique(y_te)) == {5, 6, 7, 8, 9}
    assert len(y_tr) + len(y_te) == len(x_tr) + len(x_te) == 1797
    assert tuple(x_tr.shape[1:]) == (1, 8, 8) and float(x_tr.max()) <= 1.0


def test_grid_has_each_loss_once_and_the_baseline():
    rows = get_task("digits_metric").grid(scale="quick")
    assert rows[0] == {"loss": "untrained", "miner": "-"}
    assert sorted(r["loss"] for r in rows) == sorted(
        ["untrained", "contrastive", "ntxent", "triplet", "proxy_nca", "proxy_anchor"]
    )
    assert [r["miner"] for r in rows if r["loss"] == "triplet"] == ["semihard"]


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
        trained = r["method"]["loss"] != "untrained"
        assert r["curves"]["step"] == ([0, 2, 3] if trained else [0])
    # same seed, same untrained network: the step-0 value is shared by every row
    assert len({r["curves"]["test_recall_at_1"][0] for r in records}) == 1
