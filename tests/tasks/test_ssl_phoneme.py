"""The SSL task: its grid as data, a tiny cell's determinism and per-item PER, end to end."""

import json

import pytest

from bench.cli import main
from bench.data import synthetic
from bench.models.frontends import candidate_layers
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
PRETRAINED_ROW = {"frontend": "wav2vec", "quantizer": "gumbel", "objective": "contrastive"}


def test_grid_holds_the_ablation_rows_and_baselines():
    task = get_task("ssl_phoneme")
    rows = task.grid()
    assert PRETRAINED_ROW in rows
    assert {"frontend": "wav2vec", "quantizer": "-", "objective": "data2vec"} in rows
    assert {r["frontend"] for r in rows} == {"logmel", "mfcc", "wav2vec_random", "wav2vec"}
    assert all(task.rows_at(scale) == rows for scale in ("default", "full"))
    vq = task.grid({"quantizer": ["vq"], "frontend": ["wav2vec"]})
    assert vq == [
        {"frontend": "logmel", "quantizer": "-", "objective": "-"},  # the baseline: kept
        {"frontend": "wav2vec", "quantizer": "vq", "objective": "contrastive"},
        {"frontend": "wav2vec", "quantizer": "-", "objective": "data2vec"},  # no quantizer
    ]
    assert len(task.grid({"quantizer": ["vq"]})) == 5  # rows without a quantizer are kept
    assert task.baseline_of({"frontend": "logmel", "quantizer": "-", "objective": "-"}) is None
    assert task.baseline_of(PRETRAINED_ROW) == {
        "frontend": "logmel",
        "quantizer": "-",
        "objective": "-",
    }


def test_candidate_layers():
    feats = {"encoder": [], "layer1": [], "layer2": [], "layer3": [], "context": []}
    assert candidate_layers(feats) == ["encoder", "layer2", "context"]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """A tiny embedded corpus, built once for this module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPEECHBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setitem(synthetic.SCALES, "quick", TINY_CORPUS)
        mp.setitem(ssl_phoneme.SCALE_CONFIGS, "quick", TINY_SSL)
        mp.setattr(synthetic, "_SPLIT_CACHE", {})
        yield


@pytest.mark.parametrize(
    "method",
    [
        {"frontend": "logmel", "quantizer": "-", "objective": "-"},
        {"frontend": "wav2vec_random", "quantizer": "-", "objective": "-"},
        {"frontend": "wav2vec", "quantizer": "vq", "objective": "contrastive"},
        {"frontend": "wav2vec", "quantizer": "-", "objective": "data2vec"},
    ],
    ids=lambda m: "+".join(v for v in m.values() if v != "-"),
)
def test_cell_is_deterministic_and_its_per_comes_from_its_items(
    method, tiny_corpus, tmp_path, check_task_cell
):
    config = {**get_task("ssl_phoneme").config("quick"), "eval_points": 2}
    check_task_cell("ssl_phoneme", method, config, tmp_path)


def test_per_is_corpus_level_from_the_items():
    task = get_task("ssl_phoneme")
    split = {"item_id": ["a", "b", "c"], "edits": [1, 3, 0], "ref_len": [4, 6, 0]}
    items = {"dev": split, "test": {**split, "edits": [0, 0, 2]}}
    # 4 edits over 10 phonemes (an empty reference counts nothing, as token_error_rate)
    assert task.metrics_from_items(items, {}) == {"dev_per": 0.4, "test_per": 0.0}


def test_ssl_task_runs_end_to_end(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    args = ["--suite", "quick", "--tasks", "ssl_phoneme", "--quiet", "--out", str(out)]
    args += ["--methods", "frontend=wav2vec,quantizer=gumbel,objective=contrastive"]
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2  # the row and its logmel baseline; one seed in the quick suite
    pre = next(r for r in records if r["method"]["frontend"] == "wav2vec")
    assert 0 <= pre["metrics"]["test_per"] and pre["metrics"]["dev_per"] >= 0
    assert len(pre["curves"]["pretrain_loss"]) == 3
    assert pre["metrics"]["codebook_perplexity"] > 0 and 0 < pre["metrics"]["code_usage"] <= 1
    assert pre["timing"]["train_audio_s_per_s"] > 0 and pre["timing"]["flops_per_audio_second"] > 0
    report = (out / "report.md").read_text()
    assert "test_per (%) ↓" in report and "Dataset card" in report
    assert (out / "figures" / "ssl_per.png").exists()
    assert (out / "figures" / "ssl_code_usage.png").exists()
