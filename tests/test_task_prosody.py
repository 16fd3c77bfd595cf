"""The prosody (tone of voice and speaker ID) task end to end on a tiny corpus."""

import json

import numpy as np
import pytest

from bench.cli import main
from bench.data import synthetic
from bench.tasks import prosody, speaker
from bench.tasks.base import get_task

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
    monkeypatch.setitem(speaker.SCALE_CONFIGS, "quick", TINY)
    monkeypatch.setattr(synthetic, "_SPLIT_CACHE", {})
    monkeypatch.setattr(speaker, "_FEATURES", {})
    return tmp_path


def test_grid_crosses_rows_with_targets():
    task = get_task("prosody")
    rows = task.grid(scale="quick")
    assert {r["target"] for r in rows} == {"tone", "speaker"}
    assert len(rows) == 2 * (1 + len(prosody.PROSODY_ROWS["quick"]))
    tone = task.grid({"target": ["tone"], "loss": ["proxy_nca"]}, scale="quick")
    assert [r["loss"] for r in tone] == ["untrained", "proxy_nca"]


def test_seen_speaker_split_puts_every_speaker_in_every_part():
    class U:
        def __init__(self, s):
            self.speaker = s

    utts = [U(s) for s in "aaaaabbbbbbbbbb"]
    parts = prosody.seen_speaker_splits(utts)
    allidx = np.concatenate(list(parts.values()))
    assert sorted(allidx.tolist()) == list(range(len(utts)))
    for part in parts.values():
        assert {utts[i].speaker for i in part} == {"a", "b"}


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
    assert "ece_after" in (out / "report.md").read_text()
