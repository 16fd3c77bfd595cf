"""The ASR task: its grid as data (with the labeled-amount axis), a tiny cell's determinism
and per-item WER/CER, end to end in both languages, and on a fake LibriSpeech."""

import json

import numpy as np
import pytest
import soundfile as sf

from bench.cli import main
from bench.data import synthetic
from bench.data.asr_splits import labeled_subset, librispeech_splits
from bench.metrics.asr import rate_from_counts, word_char_edits
from bench.models import pretraining
from bench.sweep import expand
from bench.tasks import asr
from bench.tasks.base import get_task

TINY_CORPUS = synthetic.CorpusConfig(
    speakers_en=3, speakers_lv=3, utterances_per_speaker=4, sentences_per_language=12
)
TINY_PRETRAIN = {"corpus": "quick", "model_size": "tiny", "steps": 2, "batch_size": 2}
TINY_ASR = {"corpus": "quick", "steps": 3, "freeze_steps": 1, "batch_size": 2, "beam_width": 2}
LOGMEL = {"frontend": "logmel", "quantizer": "-", "objective": "-"}


def test_quick_grid_covers_both_languages_and_narrows():
    task = get_task("asr")
    rows = task.grid(scale="quick")
    assert {r["language"] for r in rows} == {"en", "lv"}
    assert {r["frontend"] for r in rows} == {"logmel", "wav2vec"}
    lv = task.grid({"language": ["lv"], "frontend": ["logmel"]}, scale="quick")
    assert lv == [{**LOGMEL, "language": "lv", "labeled": "all"}]
    default = task.grid(scale="default")
    assert {r["labeled"] for r in default if r["language"] == "en"} == {"10min", "all"}
    assert {r["labeled"] for r in default if r["language"] == "lv"} == {"all"}
    assert {"frontend": "wav2vec", "quantizer": "-", "objective": "data2vec"}.items() <= next(
        r for r in default if r["objective"] == "data2vec"
    ).items()
    pre = next(r for r in rows if r["frontend"] == "wav2vec")
    assert task.baseline_of(pre) == {**pre, **LOGMEL}


def test_a_labeled_amount_replaces_the_scales_own():
    task = get_task("asr")
    rows = task.grid({"labeled": ["60min"]}, scale="default")
    assert {r["labeled"] for r in rows} == {"60min"}
    # one row per (front end, language), whatever amounts the scale had per language
    assert len(rows) == len(asr.FRONTENDS["default"]) * 2
    with pytest.raises(ValueError, match="unknown labeled '7min'"):
        task.grid({"labeled": ["7min"]}, scale="quick")


def test_default_suite_runs_wav2vec_against_log_mel_on_all_labeled_audio():
    """Its share of the 60-minute budget: the log-mel network from scratch and wav2vec 2.0
    (Gumbel + contrastive), all labeled English audio, 3 seeds; --methods reaches the rest
    (Latvian too)."""
    cells = expand("default", ["asr"], check_data=False)
    rows = {tuple(c.method.values()) for c in cells}
    assert rows == {
        (f, q, o, lang, "all")
        for f, q, o in (("logmel", "-", "-"), ("wav2vec", "gumbel", "contrastive"))
        for lang in ("en",)
    }
    assert {c.seed for c in cells} == {0, 1, 2}
    chosen = expand("default", ["asr"], selected={"objective": ["data2vec"]})
    assert {c.method["objective"] for c in chosen} == {"-", "data2vec"}
    latvian = expand("default", ["asr"], selected={"language": ["lv"]}, check_data=False)
    assert {c.method["language"] for c in latvian} == {"lv"}


def test_labeled_subset_is_seeded_and_reaches_the_amount():
    lengths = [16000] * 100  # 100 one-second utterances
    rng = np.random.default_rng
    a, seconds = labeled_subset(lengths, 10.0, rng(1))
    assert len(a) == 10 and seconds == 10.0 and len(set(a)) == 10
    assert labeled_subset(lengths, 10.0, rng(1))[0] == a
    assert labeled_subset(lengths, 10.0, rng(2))[0] != a
    everything, total = labeled_subset(lengths, float("inf"), rng(0))
    assert sorted(everything) == list(range(100)) and total == 100.0


def test_word_and_character_errors_are_corpus_level():
    e = word_char_edits(["a b c d", "e f"], ["a x c", "e f"])  # 1 sub + 1 del over 6 words
    assert rate_from_counts(e["word_edits"], e["word_len"]) == pytest.approx(2 / 6)
    assert (e["word_sub"].sum(), e["word_del"].sum(), e["word_ins"].sum()) == (1, 1, 0)
    # characters without the word separators: 1 sub + 1 del over 6
    assert rate_from_counts(e["char_edits"], e["char_len"]) == pytest.approx(2 / 6)


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """A tiny corpus (built once for the module) and tiny pre-training and fine-tuning."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPEECHBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setitem(synthetic.SCALES, "quick", TINY_CORPUS)
        mp.setitem(pretraining.PRETRAIN_SCALES, "quick", TINY_PRETRAIN)
        mp.setitem(asr.SCALE_CONFIGS, "quick", TINY_ASR)
        mp.setattr(synthetic, "_SPLIT_CACHE", {})
        yield


@pytest.mark.parametrize(
    "method",
    [
        {**LOGMEL, "language": "en", "labeled": "all"},
        {"frontend": "wav2vec", "quantizer": "gumbel", "objective": "contrastive"}
        | {"language": "lv", "labeled": "all"},
    ],
    ids=["logmel-en", "wav2vec-gumbel-contrastive-lv"],
)
def test_cell_is_deterministic_and_its_rates_come_from_its_items(
    method, tiny_setup, tmp_path, check_task_cell
):
    check_task_cell("asr", method, get_task("asr").config("quick"), tmp_path)


def _records(out):
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def test_asr_task_runs_end_to_end_in_both_languages(tiny_setup, tmp_path):
    out = tmp_path / "run"
    assert main(["--suite", "quick", "--tasks", "asr", "--quiet", "--out", str(out)]) == 0
    records = _records(out)
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    assert {r["method"]["language"] for r in records} == {"en", "lv"}
    for r in records:
        for key in ("test_wer", "test_cer", "test_wer_lm", "test_cer_lm", "dev_cer"):
            assert r["metrics"][key] >= 0
        assert r["metrics"]["labeled_seconds"] > 0
        assert r["timing"]["decode_rtf_beam"] > 0 and r["timing"]["train_samples_per_s"] > 0
        assert len(r["curves"]["finetune_loss"]) == 3
    pre = [r for r in records if r["method"]["frontend"] == "wav2vec"]
    # the first pre-trains (and keeps) the network; the other language's cell loads it,
    # with the curves kept beside it
    assert [len(r["curves"]["pretrain_loss"]) for r in pre] == [2, 2]
    assert len(list((out / "artifacts" / "ssl_encoders").glob("*.pt"))) == 1
    report = (out / "report.md").read_text()
    assert "test_cer (%) ↓" in report and "language=lv" in report
    assert (out / "figures" / "asr_wer_vs_labeled.png").exists()


def _fake_librispeech(root):
    """train-clean-100, test-clean and test-other with a few sine 'utterances' each."""
    rng = np.random.default_rng(0)
    words = ["HE HOPED THERE", "THE STREET", "GO DO YOU HEAR", "BUT IN LESS"]
    for subset, speaker in (("train-clean-100", "19"), ("test-clean", "61"), ("test-other", "84")):
        folder = root / "LibriSpeech" / subset / speaker / "100"
        folder.mkdir(parents=True)
        lines = []
        for k, text in enumerate(words):
            uid = f"{speaker}-100-{k:04d}"
            x = 0.1 * rng.standard_normal(16000 + 2000 * k).astype(np.float32)
            sf.write(folder / f"{uid}.flac", x, 16000)
            lines.append(f"{uid} {text}")
        (folder / f"{speaker}-100.trans.txt").write_text("\n".join(lines) + "\n")
    return root / "LibriSpeech"


def test_librispeech_data_gives_test_clean_and_test_other(tiny_setup, tmp_path):
    libri = _fake_librispeech(tmp_path / "data")
    splits = librispeech_splits(libri)
    assert set(splits) == {"train", "test", "test_other"}  # no dev-clean: no dev split
    assert splits["train"].lengths == [16000, 18000, 20000, 22000]
    assert splits["test"].audio[1].shape == (18000,)
    out = tmp_path / "run"
    args = ["--suite", "quick", "--tasks", "asr", "--quiet", "--out", str(out)]
    args += ["--methods", "frontend=logmel,language=en", "--data", f"librispeech={libri}"]
    assert main(args) == 0
    (record,) = _records(out)
    assert record["metrics"]["test_other_wer"] >= 0 and "dev_cer" not in record["metrics"]
    assert record["metrics"]["labeled_seconds"] == pytest.approx(4.75)
    items = np.load(next((out / "items").glob("*.npz")))
    assert sorted(items["test_other/item_id"]) == [f"84-100-{k:04d}" for k in range(4)]


def test_librispeech_without_test_subsets_names_the_fix(tmp_path):
    libri = _fake_librispeech(tmp_path)
    for subset in ("test-clean", "test-other"):
        for f in sorted((libri / subset).rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        (libri / subset).rmdir()
    with pytest.raises(ValueError, match="needs a train-\\* subset and test-clean"):
        librispeech_splits(libri)
