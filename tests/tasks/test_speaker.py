"""The speaker-embedding task end to end on a tiny corpus, its grid, and its parts."""

import json

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.context import RunContext
from bench.data import synthetic
from bench.models import logmel_features
from bench.models.batching import sample_batch
from bench.models.speaker_encoder import Encoder
from bench.models.speech_metric import SCALE_CONFIGS
from bench.store import Cell
from bench.tasks.base import get_task
from bench.tasks.speaker import SPEAKER_SCALES

TINY_CORPUS = synthetic.CorpusConfig(
    speakers_en=10, speakers_lv=0, utterances_per_speaker=3, sentences_per_language=12
)
TINY = {
    "corpus": "quick",
    "steps": 3,
    "classes_per_batch": 2,
    "samples_per_class": 2,
    "crop_frames": 40,
    "channels": 8,
    "embedding_dim": 8,
    "eval_every": 2,
}
LOGMEL = {"frontend": "logmel"}
UNTRAINED = {**LOGMEL, "loss": "-", "miner": "-", "hp": "-"}


@pytest.fixture
def tiny_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(synthetic.SCALES, "quick", TINY_CORPUS)
    monkeypatch.setitem(SCALE_CONFIGS, "quick", TINY)
    monkeypatch.setitem(SPEAKER_SCALES, "quick", TINY)
    monkeypatch.setattr(synthetic, "_SPLIT_CACHE", {})
    monkeypatch.setattr(logmel_features, "_FEATURES", {})
    return tmp_path


def _records(out):
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def test_grid_has_every_loss_and_miner_and_keeps_the_baseline():
    task = get_task("speaker")
    rows = task.grid(scale="quick")
    assert rows[0] == UNTRAINED
    assert {r["miner"] for r in rows if r["loss"] == "triplet"} == {
        "all",
        "random",
        "semihard",
        "hardest",
    }
    assert {r["loss"] for r in rows} == {
        "-",
        "contrastive",
        "ntxent",
        "triplet",
        "proxy_nca",
        "proxy_anchor",
    }
    narrowed = task.grid({"loss": ["triplet"], "miner": ["hardest"]}, scale="quick")
    assert narrowed == [
        UNTRAINED,
        {**LOGMEL, "loss": "triplet", "miner": "hardest", "hp": "default"},
    ]
    assert task.baseline_of(narrowed[1]) == narrowed[0]
    assert task.baseline_of(narrowed[0]) is None


def test_pk_batches_hold_k_of_p_classes():
    labels = np.repeat(np.arange(5), 3)
    idx = sample_batch(labels, 2, 4, np.random.default_rng(0))  # K > 3: replacement
    assert len(idx) == 8 and len(set(labels[idx])) == 2
    assert all((labels[idx] == c).sum() == 4 for c in set(labels[idx]))


def test_encoder_pooling_ignores_padding():
    torch.manual_seed(0)
    enc = Encoder(n_mels=4, channels=6, embedding_dim=3).eval()
    x = torch.randn(1, 10, 4)
    padded = torch.cat([x, torch.full((1, 5, 4), 100.0)], dim=1)
    a = enc(x, torch.tensor([10]))
    b = enc(padded, torch.tensor([10]))
    assert torch.allclose(a, b, atol=1e-6) and a.shape == (1, 3)


@pytest.mark.parametrize(
    "method",
    [
        UNTRAINED,
        {**LOGMEL, "loss": "triplet", "miner": "random"},
        {**LOGMEL, "loss": "proxy_nca", "miner": "-"},
    ],
)
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    method, tiny_setup, check_task_cell
):
    check_task_cell("speaker", method, TINY, tiny_setup)


def test_items_are_the_test_utterances_with_their_embeddings(tiny_setup):
    task = get_task("speaker")
    cell = Cell("speaker", {**LOGMEL, "loss": "ntxent", "miner": "-"}, 0, "quick", TINY)
    result = task.run(cell, RunContext(device=torch.device("cpu"), quiet=True).for_cell(0))
    test = result.items["test"]
    n = len(test["item_id"])
    assert n == len(set(test["item_id"])) and set(result.items) == {"test"}
    assert set(test) >= {"label", "rank", "ap_at_r", "cluster", "embedding"}
    assert result.metrics["recall_at_1"] == np.mean(test["rank"] == 1)
    assert result.curves["step"] == [1, 2, 3]  # step 1, every 2 steps, the last
    assert len(result.curves["test_pca"]) == n


def test_speaker_task_runs_end_to_end(tiny_setup):
    out = tiny_setup / "run"
    methods = "loss=triplet,miner=semihard,loss=proxy_anchor"
    args = ["--suite", "quick", "--tasks", "speaker", "--methods", methods, "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    records = _records(out)
    assert {(r["method"]["loss"], r["method"]["miner"]) for r in records} == {
        ("-", "-"),
        ("triplet", "semihard"),
        ("proxy_anchor", "-"),  # no miner: kept by miner=semihard
    }
    # equal tuning: per trained row its default, one quick trial (seed 0), then the tuned row
    hp = sorted((r["method"]["loss"], r["method"]["hp"], r["seed"]) for r in records)
    trained = [h for h in hp if h[0] != "-"]
    assert [h[1] for h in trained] == ["default", "trial1", "tuned"] * 2
    for r in records:
        if r["method"]["loss"] != "-":
            assert 0 <= r["metrics"]["valid_map_at_r"] <= 1  # what the search selects on
    for r in records:
        assert r["status"] == "ok", r.get("error")
        for m in ("recall_at_1", "map_at_r", "nmi", "eer"):
            assert 0 <= r["metrics"][m] <= 1
        assert len(r["curves"]["test_pca"]) == len(r["curves"]["test_speakers"])
    trained = next(r for r in records if r["method"]["loss"] == "triplet")
    assert trained["curves"]["step"] == [1, 2, 3]
    report = (out / "report.md").read_text()
    assert "recall_at_1" in report and "speaker_embeddings_pca.png" in report
    assert "### Tuning trials" in report and "hp=trial1 |" not in report
    assert (out / "figures" / "speaker_recall_vs_step.png").exists()


def test_every_loss_row_trains_a_step(tiny_setup):
    task = get_task("speaker")
    ctx = RunContext(device=torch.device("cpu"), quiet=True).for_cell(0)
    cfg = {**task.config("quick"), "steps": 1}
    for row in task.grid(scale="quick"):
        cell = Cell(task="speaker", method=row, seed=0, scale="quick", config=cfg)
        result = task.run(cell, ctx)
        assert np.isfinite(result.metrics["eer"]), row


def test_noisy_one_second_evaluation_reads_the_mixtures_middle(tiny_setup):
    clean_utts, clean = logmel_features.split_audio("quick", "test")
    utts, noisy = logmel_features.split_audio("quick", "test", "noisy", 1.0)
    assert [u.speaker for u in utts] == [u.speaker for u in clean_utts]
    assert [u.id for u in utts] == [f"{u.id}_noisy" for u in clean_utts]
    assert all(
        len(x) == min(len(c), synthetic.SAMPLE_RATE) for x, c in zip(noisy, clean, strict=True)
    )
    c, x = clean[0], noisy[0]
    start = (len(c) - len(x)) // 2
    assert not np.allclose(x, c[start : start + len(x)])  # noise was added
    with pytest.raises(ValueError, match="clean or noisy"):
        get_task("speaker").run(
            Cell("speaker", UNTRAINED, 0, "quick", {**TINY, "eval_condition": "reverb"}),
            RunContext(device=torch.device("cpu"), quiet=True).for_cell(0),
        )
