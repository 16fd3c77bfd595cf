"""The SSL task end to end on a tiny corpus and a tiny model (minutes -> seconds)."""

import json

import pytest

from bench.cli import main
from bench.data import synthetic
from bench.tasks import ssl_phoneme
from bench.tasks.base import get_task

TINY_CORPUS = synthetic.CorpusConfig(
    speakers_en=3, speakers_lv=0, utterances_per_speaker=6, sentences_per_language=12
)
TINY_SSL = {
    "corpus": "quick",
    "model_size": "tiny",
    "steps": 3,
    "batch_size": 2,
    "crop_seconds": 0.5,
    "probe_epochs": 2,
}


def test_grid_holds_the_ablation_cells_and_baselines():
    task = get_task("ssl_phoneme")
    rows = task.grid()
    assert {"frontend": "pretrained", "quantizer": "gumbel", "objective": "contrastive"} in rows
    assert {r["frontend"] for r in rows} == {"logmel", "mfcc", "random", "pretrained"}
    vq = task.grid({"quantizer": ["vq"], "frontend": ["pretrained"]})
    assert vq == [{"frontend": "pretrained", "quantizer": "vq", "objective": "contrastive"}]
    assert len(task.grid({"quantizer": ["vq"]})) == 4  # baselines have no quantizer: kept
    assert task.baseline_of({"frontend": "logmel", "quantizer": "-", "objective": "-"}) is None
    assert task.baseline_of(rows[-1])["frontend"] == "logmel"


def test_candidate_layers():
    feats = {"encoder": [], "layer1": [], "layer2": [], "layer3": [], "context": []}
    assert ssl_phoneme.candidate_layers(feats) == ["encoder", "layer2", "context"]


@pytest.fixture
def tiny_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(synthetic.SCALES, "quick", TINY_CORPUS)
    monkeypatch.setitem(ssl_phoneme.SCALE_CONFIGS, "quick", TINY_SSL)
    monkeypatch.setattr(synthetic, "_SPLIT_CACHE", {})
    return tmp_path


def test_ssl_task_runs_end_to_end(tiny_setup):
    out = tiny_setup / "run"
    args = [
        "--suite",
        "quick",
        "--tasks",
        "ssl_phoneme",
        "--quiet",
        "--out",
        str(out),
        "--methods",
        "frontend=logmel,frontend=pretrained,quantizer=gumbel,objective=contrastive",
    ]
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2  # the quick suite runs one seed of this task
    pre = next(r for r in records if r["method"]["frontend"] == "pretrained")
    assert 0 <= pre["metrics"]["test_per"] and pre["metrics"]["dev_per"] >= 0
    assert len(pre["curves"]["pretrain_loss"]) == 3
    assert pre["metrics"]["codebook_perplexity"] > 0 and 0 < pre["metrics"]["code_usage"] <= 1
    assert pre["timing"]["train_audio_s_per_s"] > 0 and pre["timing"]["flops_per_audio_second"] > 0
    report = (out / "report.md").read_text()
    assert "test_per (%) ↓" in report and "Dataset card" in report
    assert (out / "figures" / "ssl_per.png").exists()
    assert (out / "figures" / "ssl_code_usage.png").exists()
