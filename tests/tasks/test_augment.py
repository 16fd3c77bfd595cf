"""The augmentation-ablation task end to end on a tiny corpus, and its per-item results."""

import json

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.context import RunContext
from bench.data import synthetic
from bench.store import Cell
from bench.tasks import augment
from bench.tasks.base import get_task

TINY_CORPUS = synthetic.CorpusConfig(
    speakers_en=10, speakers_lv=0, utterances_per_speaker=3, sentences_per_language=12
)
TINY = {
    "corpus": "quick",
    "steps": 3,
    "batch_size": 4,
    "crop_frames": 40,
    "channels": 8,
    "embedding_dim": 8,
    "eval_every": 2,
}
LOGMEL = {"frontend": "logmel"}


@pytest.fixture
def tiny_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(synthetic.SCALES, "quick", TINY_CORPUS)
    monkeypatch.setitem(augment.SCALE_CONFIGS, "quick", TINY)
    monkeypatch.setattr(synthetic, "_SPLIT_CACHE", {})
    return tmp_path


def test_grid_is_the_augmentations_against_none():
    task = get_task("augment")
    rows = task.grid(scale="quick")
    assert [r["augment"] for r in rows] == ["none", "noise", "speed", "specaugment"]
    assert task.baseline_of({**LOGMEL, "augment": "speed"}) == {**LOGMEL, "augment": "none"}
    assert task.grid({"augment": ["noise"]}) == [
        {**LOGMEL, "augment": "none"},
        {**LOGMEL, "augment": "noise"},
    ]


@pytest.mark.parametrize("name", ["none", "speed", "specaugment"])
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    name, tiny_setup, check_task_cell
):
    check_task_cell("augment", {**LOGMEL, "augment": name}, TINY, tiny_setup)


def test_items_score_each_test_utterance_in_each_condition(tiny_setup):
    task = get_task("augment")
    cell = Cell("augment", {**LOGMEL, "augment": "noise"}, 0, "quick", TINY)
    result = task.run(cell, RunContext(device=torch.device("cpu"), quiet=True).for_cell(0))
    test = result.items["test"]
    assert len(test["item_id"]) == len(set(test["item_id"])) == 10  # 1 of 3 per speaker
    for condition in augment.CONDITIONS:
        assert np.array_equal(
            test[f"correct_{condition}"], test[f"pred_{condition}"] == test["label"]
        )
        assert result.metrics[f"acc_{condition}"] == np.mean(test[f"correct_{condition}"])
    assert result.curves["step"] == [2, 3]
    assert result.curves["test_acc_clean"][-1] == result.metrics["acc_clean"]


def test_task_end_to_end(tiny_setup):
    out = tiny_setup / "run"
    main(["--tasks", "augment", "--suite", "quick", "--quiet", "--out", str(out)])
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [r["method"]["augment"] for r in records] == ["none", "noise", "speed", "specaugment"]
    for r in records:
        assert r["status"] == "ok", r.get("error")
        for k in ("acc_clean", "acc_noisy", "acc_speed"):
            assert 0.0 <= r["metrics"][k] <= 1.0
        assert r["curves"]["step"] == [2, 3]
    assert "acc_noisy" in (out / "report.md").read_text()
