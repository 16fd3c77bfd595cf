"""The prosody (tone of voice and speaker ID) task end to end on a tiny corpus."""

import json

import numpy as np
import pytest
import torch

from bench import harness
from bench.cli import main
from bench.context import RunContext
from bench.data import synthetic
from bench.data.seen_speakers import seen_speaker_splits
from bench.models import logmel_features
from bench.models.speech_metric import SCALE_CONFIGS
from bench.store import Cell
from bench.tasks.base import get_task
from bench.tasks.prosody import PROSODY_SCALES

TINY_CORPUS = synthetic.CorpusConfig(
    speakers_en=3, speakers_lv=0, utterances_per_speaker=8, sentences_per_language=12
)
TINY = {
    "corpus": "quick",
    "steps": 2,
    "classes_per_batch": 2,
    "samples_per_class": 2,
    "crop_frames": 40,
    "channels": 8,
    "embedding_dim": 8,
    "eval_every": 1,
}


@pytest.fixture
def tiny_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(synthetic.SCALES, "quick", TINY_CORPUS)
    monkeypatch.setitem(SCALE_CONFIGS, "quick", TINY)
    monkeypatch.setitem(PROSODY_SCALES, "quick", TINY)
    monkeypatch.setattr(synthetic, "_SPLIT_CACHE", {})
    monkeypatch.setattr(logmel_features, "_FEATURES", {})
    return tmp_path


def test_grid_crosses_rows_with_targets():
    task = get_task("prosody")
    rows = task.grid(scale="quick")
    assert {r["target"] for r in rows} == {"tone", "speaker"}
    assert len(rows) == 2 * 6  # the untrained row and each loss once, per target
    assert [r["miner"] for r in rows if r["loss"] == "triplet"] == ["semihard"] * 2
    assert len(task.grid(scale="full")) == 2 * 9  # full: every triplet miner
    tone = task.grid({"target": ["tone"], "loss": ["proxy_nca"]}, scale="quick")
    assert [r["loss"] for r in tone] == ["-", "proxy_nca"]
    assert task.baseline_of(tone[1]) == tone[0]


def test_seen_speaker_split_puts_every_speaker_in_every_part():
    class U:
        def __init__(self, s):
            self.speaker = s

    utts = [U(s) for s in "aaaaabbbbbbbbbb"]
    parts = seen_speaker_splits(utts)
    allidx = np.concatenate(list(parts.values()))
    assert sorted(allidx.tolist()) == list(range(len(utts)))
    for part in parts.values():
        assert {utts[i].speaker for i in part} == {"a", "b"}


@pytest.mark.parametrize(
    "method",
    [
        {"frontend": "logmel", "loss": "-", "miner": "-", "target": "tone"},
        {"frontend": "logmel", "loss": "triplet", "miner": "semihard", "target": "speaker"},
    ],
)
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    method, tiny_setup, check_task_cell
):
    check_task_cell("prosody", method, TINY, tiny_setup)


def test_items_are_the_test_utterances(tiny_setup):
    task = get_task("prosody")
    method = {"frontend": "logmel", "loss": "ntxent", "miner": "-", "target": "tone"}
    cell = Cell("prosody", method, 0, "quick", TINY)
    result = task.run(cell, RunContext(device=torch.device("cpu"), quiet=True).for_cell(0))
    test = result.items["test"]
    n = len(test["item_id"])
    assert n == len(set(test["item_id"])) == 3 * 2  # 20% of each speaker's 8 utterances
    assert np.array_equal(test["correct"], test["label"] == test["pred"])
    assert np.all(test["nll"] >= 0) and np.all(test["confidence_after"] <= 1)
    assert result.metrics["accuracy"] == np.mean(test["correct"])
    assert np.asarray(result.curves["confusion"]).sum() == n


def test_valid_and_test_are_heard_as_configured_and_training_stays_clean(tiny_setup):
    task = get_task("prosody")
    method = {"frontend": "logmel", "loss": "ntxent", "miner": "-", "target": "speaker"}
    ctx = RunContext(device=torch.device("cpu"), quiet=True).for_cell(0)
    harness.seed_everything(0)  # as the harness does before every cell
    clean = task.run(Cell("prosody", method, 0, "quick", TINY), ctx)
    noisy_cfg = {**TINY, "eval_condition": "noisy", "eval_seconds": 0.5}
    harness.seed_everything(0)
    noisy = task.run(Cell("prosody", method, 0, "quick", noisy_cfg), ctx)
    ids = clean.items["test"]["item_id"]
    assert list(noisy.items["test"]["item_id"]) == [f"{i}_noisy" for i in ids]  # same utts
    assert np.array_equal(noisy.items["test"]["label"], clean.items["test"]["label"])
    # the same training (clean, whole utterances): the same loss curve
    assert noisy.curves["train_loss"] == clean.curves["train_loss"]
    assert not np.array_equal(
        noisy.items["test"]["confidence_before"], clean.items["test"]["confidence_before"]
    )
    assert get_task("prosody").config("default")["eval_seconds"] == 1.0


def test_prosody_task_runs_end_to_end(tiny_setup):
    out = tiny_setup / "run"
    args = [
        "--suite",
        "quick",
        "--tasks",
        "prosody",
        "--methods",
        "loss=proxy_nca",
        "--quiet",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 4  # (untrained, proxy_nca) x (tone, speaker), one seed
    for r in records:
        assert r["status"] == "ok", r.get("error")
        m = r["metrics"]
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["ece_after"] <= 1 and m["temperature"] > 0
        n = len(r["curves"]["classes"])
        assert np.asarray(r["curves"]["confusion"]).shape == (n, n)
    assert (out / "figures" / "prosody_confusion_tone.png").exists()
    report = (out / "report.md").read_text()
    assert "ece_after" in report


def test_tuning_picks_the_valid_accuracy_point_and_reruns_it(tiny_setup, monkeypatch):
    """Equal tuning as in the speaker task: trials at seed 0, then the tuned row at the
    point with the best *valid* accuracy (the test accuracy never enters the choice)."""
    task = get_task("prosody")
    assert not task.cells("quick", [0])[0].method["hp"].startswith("trial")
    monkeypatch.setitem(task.tuning.trials, "quick", 3)  # 3 points in this test only
    out = tiny_setup / "run"
    args = ["--suite", "quick", "--tasks", "prosody", "--methods", "loss=ntxent,target=tone"]
    assert main([*args, "--quiet", "--out", str(out)]) == 0
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    by_hp = {r["method"]["hp"]: r for r in records if r["method"]["loss"] == "ntxent"}
    assert set(by_hp) == {"default", "trial1", "trial2", "tuned"}
    points = {hp: by_hp[hp]["config"]["lr"] for hp in ("default", "trial1", "trial2")}
    assert len(set(points.values())) == 3 and all(1e-4 <= v <= 1e-2 for v in points.values())
    valid = {hp: by_hp[hp]["metrics"]["valid_accuracy"] for hp in points}
    best = max(valid, key=lambda hp: (valid[hp], hp == "default"))
    assert by_hp["tuned"]["config"]["lr"] == points[best]
    assert "### Tuning trials" in (out / "report.md").read_text()
