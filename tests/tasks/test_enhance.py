"""The enhancement task end to end on a tiny corpus (and a tiny fake VoiceBank-DEMAND)."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.cli import main
from bench.data import synthetic
from bench.tasks import enhance
from bench.tasks.base import get_task

TINY_CORPUS = synthetic.CorpusConfig(
    speakers_en=3, speakers_lv=0, utterances_per_speaker=6, sentences_per_language=12
)
TINY = {
    "corpus": "quick",
    "steps": 2,
    "batch_size": 2,
    "crop_seconds": 0.25,
    "test_utterances": 4,
    "pesq_workers": 2,
}


def test_grid_pairs_losses_with_learned_enhancers_only():
    task = get_task("enhance")
    rows = task.grid()
    assert {"enhancer": "identity", "enh_loss": "-"} in rows
    assert {"enhancer": "wiener", "enh_loss": "-"} in rows
    assert {"enhancer": "mask", "enh_loss": "mrstft"} in rows
    assert not any(r["enhancer"] == "specsub" and r["enh_loss"] != "-" for r in rows)
    assert len(rows) == 3 + 2 * 3
    narrowed = task.grid({"enhancer": ["identity", "convtasnet"], "enh_loss": ["l1"]})
    assert narrowed == [
        {"enhancer": "identity", "enh_loss": "-"},
        {"enhancer": "convtasnet", "enh_loss": "l1"},
    ]
    assert task.baseline_of({"enhancer": "identity", "enh_loss": "-"}) is None
    assert task.baseline_of({"enhancer": "mask", "enh_loss": "l1"}) == {
        "enhancer": "identity",
        "enh_loss": "-",
    }
    with pytest.raises(LookupError, match="known enhancer names"):
        task.grid({"enhancer": ["nope"]})


def test_test_subset_is_balanced_and_fixed():
    class U:
        def __init__(self, kind):
            self.noise_type = kind

    utts = [U(k) for k in ("white", "pink", "babble") * 10]
    a = enhance.test_indices(utts, 9)
    assert a == enhance.test_indices(utts, 9) and len(a) == 9
    assert sorted(utts[i].noise_type for i in a).count("pink") == 3


@pytest.fixture
def tiny_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(synthetic.SCALES, "quick", TINY_CORPUS)
    monkeypatch.setitem(enhance.SCALE_CONFIGS, "quick", TINY)
    monkeypatch.setattr(enhance, "_PAIRS", {})
    return tmp_path


def test_enhance_task_runs_end_to_end(tiny_setup):
    out = tiny_setup / "run"
    args = ["--suite", "quick", "--tasks", "enhance", "--quiet", "--out", str(out)]
    methods = (
        "enhancer=identity,enhancer=wiener,enhancer=mask,enhancer=convtasnet,enh_loss=neg_sisdr"
    )
    assert main([*args, "--methods", methods]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    by = {r["method"]["enhancer"]: r for r in records}
    ident = by["identity"]["metrics"]
    assert ident["pesq_wb_gain"] == pytest.approx(0.0) and ident["si_sdr_gain"] == pytest.approx(0)
    for r in records:
        m = r["metrics"]
        assert 1.0 <= m["pesq_wb"] <= 4.65 and 0 <= m["stoi"] <= 1
        assert m["pesq_failures"] == 0 and len(r["curves"]["utt_pesq_wb"]) == 4
        assert r["timing"]["rtf"] > 0 and r["timing"]["eval_samples_per_s"] > 0
    mask = by["mask"]
    assert len(mask["curves"]["train_loss"]) == 2 and mask["metrics"]["parameters"] > 0
    assert mask["timing"]["train_samples_per_s"] > 0
    report = (out / "report.md").read_text()
    assert "pesq_wb (MOS-LQO) ↑" in report and "Dataset card" in report
    for stem in ("enhance_pesq_by_snr", "enhance_pesq_by_noise", "enhance_spectrograms"):
        assert (out / "figures" / f"{stem}.png").exists()
    # resuming runs nothing again
    assert main([*args, "--methods", methods]) == 0
    assert len((out / "records.jsonl").read_text().splitlines()) == 4


def speech_like(n, seed):
    t = np.arange(n) / 16000
    f0 = 110 + 20 * seed + 25 * np.sin(2 * np.pi * 0.8 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (np.sin(2 * np.pi * 1.7 * t) > -0.3)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def make_voicebank(root: Path, silent: str | None = None) -> Path:
    """A fake VoiceBank-DEMAND tree of 1.2 s speech-like pairs; ``silent`` names a test
    file whose clean and noisy audio are silent (PESQ fails on it)."""
    rng = np.random.default_rng(0)
    sets = {
        "trainset_28spk": ["p226_001", "p226_002", "p287_010"],
        "testset": ["p232_001", "p257_004"],
    }
    for name, ids in sets.items():
        for k, uid in enumerate(ids):
            clean = speech_like(19200, k)
            noisy = clean + 0.05 * rng.standard_normal(clean.size).astype(np.float32)
            if uid == silent:
                clean, noisy = np.zeros_like(clean), np.zeros_like(clean)
            for kind, audio in (("clean", clean), ("noisy", noisy)):
                path = root / f"{kind}_{name}_wav" / f"{uid}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, audio, 16000, subtype="PCM_16")
    return root


def test_enhance_on_voicebank_counts_pesq_failures(tiny_setup):
    vb = make_voicebank(tiny_setup / "vb", silent="p257_004")
    out = tiny_setup / "vbrun"
    args = ["--suite", "quick", "--tasks", "enhance", "--quiet", "--out", str(out)]
    args += [
        "--data",
        f"voicebank={vb}",
        "--methods",
        "enhancer=identity,enhancer=mask,enh_loss=l1",
    ]
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    for r in records:
        assert r["config"]["data"] == {"voicebank": str(vb)}
        assert r["metrics"]["pesq_failures"] == 1  # the silent test file: counted, not scored
        assert r["curves"]["pesq_failed"][0][0] == "p257_004"
        assert r["curves"]["utt_pesq_wb"][1] is None and r["curves"]["utt_pesq_wb"][0] > 1
    assert "VoiceBank-DEMAND" in (out / "report.md").read_text()
