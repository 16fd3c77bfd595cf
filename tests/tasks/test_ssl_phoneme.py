"""The SSL task: its grid as data, a tiny cell's determinism and per-item PER, end to end."""

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.data import synthetic
from bench.sweep import expand
from bench.sweep_file import expand_sweep, load_sweep
from bench.tasks import ssl_phoneme
from bench.tasks.base import get_task

REPO = Path(__file__).resolve().parents[2]

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
    "probe_starts": 2,
    "ft_steps": 3,
    "ft_freeze_steps": 1,
    "ft_batch_size": 2,
}
PRETRAINED_ROW = {"frontend": "wav2vec", "quantizer": "gumbel", "objective": "contrastive"}


def test_grid_holds_the_ablation_rows_and_baselines():
    task = get_task("ssl_phoneme")
    rows = task.grid(scale="default")
    for labeled in ("1min", "5min", "all"):
        assert {**PRETRAINED_ROW, "labeled": labeled} in rows
        assert {
            "frontend": "wav2vec_random",
            "quantizer": "-",
            "objective": "-",
            "labeled": labeled,
        } in rows
    assert {
        "frontend": "wav2vec",
        "quantizer": "-",
        "objective": "data2vec",
        "labeled": "1min",
    } in rows
    assert {
        "frontend": "wav2vec",
        "quantizer": "random_projection",
        "objective": "code_prediction",
        "labeled": "1min",
    } in rows
    assert {r["frontend"] for r in rows} == {"logmel", "mfcc", "wav2vec_random", "wav2vec"}
    assert {r["labeled"] for r in rows if r["frontend"] in ("logmel", "mfcc")} == {"all"}
    # the baseline of a pre-trained row is the same network at random init, same labels
    assert task.baseline_of({**PRETRAINED_ROW, "labeled": "5min"}) == {
        "frontend": "wav2vec_random",
        "quantizer": "-",
        "objective": "-",
        "labeled": "5min",
    }


def test_default_suite_runs_the_contrastive_rows_and_a_sweep_or_methods_the_rest():
    """The default suite's 60-minute budget holds wav2vec 2.0 (Gumbel + contrastive) against
    its random-init baseline; --methods and sweeps/ssl_quantizer_objective.toml reach every
    row of the scale."""

    def objectives(cells):
        return {(c.method["quantizer"], c.method["objective"]) for c in cells}

    suite = expand("default", ["ssl_phoneme"], check_data=False)
    assert objectives(suite) == {("gumbel", "contrastive"), ("-", "-")}
    assert {c.method["frontend"] for c in suite} == {"wav2vec", "wav2vec_random"}
    assert {c.method["labeled"] for c in suite} == {"1min", "all"}  # the two ends (budget)
    assert {c.seed for c in suite} == {0, 1, 2}
    continuous = expand("default", ["ssl_phoneme"], selected={"quantizer": ["none", "vq"]})
    assert objectives(continuous) == {("none", "contrastive"), ("vq", "contrastive"), ("-", "-")}
    chosen = expand("default", ["ssl_phoneme"], selected={"objective": ["data2vec"]})
    assert objectives(chosen) == {("-", "data2vec"), ("-", "-")}
    sweep = expand_sweep(load_sweep(REPO / "sweeps" / "ssl_quantizer_objective.toml"))
    assert objectives(sweep) == {*ssl_phoneme.PRETRAINED, ("-", "-")}


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
        {"frontend": "logmel", "quantizer": "-", "objective": "-", "labeled": "all"},
        {"frontend": "wav2vec_random", "quantizer": "-", "objective": "-", "labeled": "1min"},
        {"frontend": "wav2vec", "quantizer": "vq", "objective": "contrastive", "labeled": "all"},
        {"frontend": "wav2vec", "quantizer": "-", "objective": "data2vec", "labeled": "1min"},
    ],
    ids=lambda m: "+".join(v for v in m.values() if v != "-"),
)
def test_cell_is_deterministic_and_its_per_comes_from_its_items(
    method, tiny_corpus, tmp_path, check_task_cell
):
    config = get_task("ssl_phoneme").config("quick")
    check_task_cell("ssl_phoneme", method, config, tmp_path)


def test_per_is_corpus_level_from_the_items():
    task = get_task("ssl_phoneme")
    split = {"item_id": ["a", "b", "c"], "edits": [1, 3, 0], "ref_len": [4, 6, 0]}
    items = {"dev": split, "test": {**split, "edits": [0, 0, 2]}, "probe_test": split}
    # 4 edits over 10 phonemes (an empty reference counts nothing, as token_error_rate)
    assert task.metrics_from_items(items, {}) == {
        "dev_per": 0.4,
        "test_per": 0.0,
        "probe_test_per": 0.4,
    }


def test_ssl_task_runs_end_to_end(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    args = ["--suite", "quick", "--tasks", "ssl_phoneme", "--quiet", "--out", str(out)]
    args += ["--methods", "frontend=wav2vec,quantizer=gumbel,objective=contrastive"]
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    # the row and its random-init baseline at two labeled amounts; one seed in the quick suite
    assert len(records) == 4
    pre = [r for r in records if r["method"]["frontend"] == "wav2vec"]
    for r in pre:  # one cell pre-trains, the other loads the kept network and its summary
        assert 0 <= r["metrics"]["test_per"] and r["metrics"]["dev_per"] >= 0
        assert len(r["curves"]["pretrain_loss"]) == 3
        assert r["metrics"]["code_perplexity"] > 0 and 0 < r["metrics"]["code_usage"] <= 1
        assert 0 <= r["metrics"]["phone_pnmi"] <= 1
        assert r["metrics"]["pretrain_chance"] == pytest.approx(1 / 11)  # tiny: K = 10
    assert sum("train_audio_s_per_s" in r["timing"] for r in pre) == 1
    everything = next(r for r in pre if r["method"]["labeled"] == "all")
    assert "probe_test_per" in everything["metrics"]
    assert len(everything["curves"]["probe_layer_weights"]) == 3  # input + 2 blocks (tiny)
    report = (out / "report.md").read_text()
    assert "test_per (%) ↓" in report and "Dataset card" in report
    assert (out / "figures" / "ssl_code_usage.png").exists()
