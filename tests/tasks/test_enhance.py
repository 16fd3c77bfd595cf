"""The enhancement task end to end on a tiny corpus (and a tiny fake VoiceBank-DEMAND)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.cells import run_cell
from bench.cli import main
from bench.context import RunContext
from bench.data import noisy_pairs, synthetic
from bench.metrics.enhancement import enhancement_items, metrics_from_items, score_utterances
from bench.store import Cell, latest_records, read_items
from bench.sweep import parse_methods
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
    identity = {"enhancer": "identity", "enh_loss": "-", "hp": "-"}  # nothing to tune: hp -
    assert identity in rows
    assert {"enhancer": "wiener", "enh_loss": "-", "hp": "-"} in rows
    assert {"enhancer": "mask", "enh_loss": "mrstft", "hp": "default"} in rows
    assert not any(r["enhancer"] == "specsub" and r["enh_loss"] != "-" for r in rows)
    assert len(rows) == 3 + 2 * 3
    narrowed = task.grid({"enhancer": ["identity", "convtasnet"], "enh_loss": ["l1"]})
    assert narrowed == [identity, {"enhancer": "convtasnet", "enh_loss": "l1", "hp": "default"}]
    assert task.baseline_of(identity) is None
    for hp in ("default", "tuned"):  # a tuned row is tested against the noisy input too
        assert task.baseline_of({"enhancer": "mask", "enh_loss": "l1", "hp": hp}) == identity
    with pytest.raises(LookupError, match="known enhancer names"):
        parse_methods("enhancer=nope")
    assert all(task.cells(scale, [0]) for scale in ("quick", "default", "full"))


def test_test_subset_is_balanced_and_fixed():
    class U:
        def __init__(self, kind):
            self.noise_type = kind

    utts = [U(k) for k in ("white", "pink", "babble") * 10]
    a = noisy_pairs.test_indices(utts, 9)
    assert a == noisy_pairs.test_indices(utts, 9) and len(a) == 9
    assert sorted(utts[i].noise_type for i in a).count("pink") == 3


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """One tiny corpus for the module's tests (built once, on first use)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPEECHBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setitem(synthetic.SCALES, "quick", TINY_CORPUS)
        mp.setattr(noisy_pairs, "_PAIRS", {})
        yield


@pytest.fixture
def tiny_setup(tiny_cache, tmp_path, monkeypatch):
    monkeypatch.setitem(enhance.SCALE_CONFIGS, "quick", TINY)
    return tmp_path


def tiny_config(**changes) -> dict:
    return {**get_task("enhance").config("quick"), **TINY, **changes}


@pytest.mark.parametrize(
    "method",
    [
        {"enhancer": "identity", "enh_loss": "-"},
        {"enhancer": "wiener", "enh_loss": "-"},
        {"enhancer": "mask", "enh_loss": "l1"},
    ],
)
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    method, tiny_setup, check_task_cell
):
    check_task_cell("enhance", method, tiny_config(), tiny_setup)


def run_tiny(method: dict, run_dir: Path, **changes):
    cell = Cell("enhance", method, 0, "quick", tiny_config(**changes))
    ctx = RunContext(device=torch.device("cpu"), run_dir=run_dir, quiet=True)
    return run_cell(cell, ctx, "test", {})


def test_items_are_the_test_mixtures_with_the_noisy_input_scores(tiny_setup):
    identity = run_tiny({"enhancer": "identity", "enh_loss": "-"}, tiny_setup)
    wiener = run_tiny({"enhancer": "specsub", "enh_loss": "-"}, tiny_setup, pesq_workers=1)
    a, b = identity.items["test"], wiener.items["test"]
    assert a["item_id"].tolist() == identity.record.curves["utt_id"] == b["item_id"].tolist()
    for name in ("pesq_wb", "stoi", "estoi", "si_sdr"):
        assert np.array_equal(a[name], a[f"noisy_{name}"])  # identity: its output is its input
        assert np.array_equal(a[name], b[f"noisy_{name}"])  # one noisy input for every row
        assert identity.record.metrics[f"{name}_gain"] == 0.0
    assert not a["pesq_failed"].any()
    assert wiener.record.metrics["si_sdr_gain"] == pytest.approx(np.mean(b["si_sdr"] - a["si_sdr"]))


def test_scores_are_computed_once_per_audio(tiny_setup, monkeypatch):
    """The scores of the same output audio are read back, not recomputed: a filter's output
    at another seed, the identity's output (the noisy input); a learned output is new."""
    calls = []
    original = enhance.score_utterances

    def counting(cleans, estimates, *args, **kwargs):
        calls.append(len(estimates))
        return original(cleans, estimates, *args, **kwargs)

    monkeypatch.setattr(enhance, "score_utterances", counting)
    wiener = {"enhancer": "wiener", "enh_loss": "-"}
    first = run_tiny(wiener, tiny_setup)
    assert calls == [TINY["test_utterances"]] * 2  # the noisy input, then wiener's output
    cell = Cell("enhance", wiener, 1, "quick", tiny_config())
    ctx = RunContext(device=torch.device("cpu"), run_dir=tiny_setup, quiet=True)
    second = run_cell(cell, ctx, "test", {})
    identity = run_tiny({"enhancer": "identity", "enh_loss": "-"}, tiny_setup)
    assert len(calls) == 2  # seed 1's output is seed 0's; the identity's is the noisy input
    assert second.record.metrics == first.record.metrics
    assert identity.record.metrics["pesq_wb_gain"] == 0.0
    run_tiny({"enhancer": "mask", "enh_loss": "l1"}, tiny_setup)
    assert len(calls) == 3


def test_a_row_trains_exactly_when_it_has_a_loss(tiny_setup):
    for method, message in (
        ({"enhancer": "wiener", "enh_loss": "l1"}, "is not learned"),
        ({"enhancer": "mask", "enh_loss": "-"}, "is learned: give it an enh_loss"),
    ):
        record = run_tiny(method, tiny_setup).record
        assert record.status == "failed" and message in record.error
    mask = run_tiny({"enhancer": "mask", "enh_loss": "neg_sisdr"}, tiny_setup).record
    assert len(mask.curves["train_loss"]) == TINY["steps"] and mask.metrics["parameters"] > 0


def test_estoi_does_not_depend_on_the_global_random_state():
    """pystoi's ESTOI dithers with numpy's global generator; the scores must not."""
    rng = np.random.default_rng(3)
    clean = [rng.standard_normal(16000).astype(np.float32) for _ in range(2)]
    noisy = [c + rng.standard_normal(16000).astype(np.float32) for c in clean]
    np.random.seed(1)
    first = score_utterances(clean, noisy, 16000, workers=1)
    np.random.seed(2)
    before = np.random.get_state()[1].copy()
    second = score_utterances(clean, noisy, 16000, workers=1)
    assert first == second
    assert np.array_equal(np.random.get_state()[1], before)  # the global stream is untouched
    items = enhancement_items(["a", "b"], first, second)
    assert metrics_from_items(items)["estoi_gain"] == 0.0
    assert math.isnan(metrics_from_items({**items, "pesq_wb": np.full(2, np.nan)})["pesq_wb"])


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
    for r in latest_records(out):  # the metrics are the means of the per-mixture items
        assert metrics_from_items(read_items(out, r.cell_key)["test"])["pesq_wb"] == pytest.approx(
            r.metrics["pesq_wb"], abs=0
        )


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
        items = read_items(out, r["cell_key"])["test"]
        assert items["item_id"].tolist() == ["p232_001", "p257_004"]
        assert items["pesq_failed"].tolist() == [0, 1] and np.isnan(items["pesq_wb"][1])
    assert "VoiceBank-DEMAND" in (out / "report.md").read_text()


def test_learned_rows_are_tuned_on_the_valid_mixtures(tiny_setup, monkeypatch):
    """Equal tuning of the learned enhancers: trials at seed 0, then the tuned row at the
    learning rate whose valid PESQ-WB was best; the filters without training are not
    searched, and the default suite's search draws 4 points per learned row."""
    task = get_task("enhance")
    default = task.cells("default", [0])
    trials = [c for c in default if c.method["hp"].startswith("trial")]
    assert {c.method["enhancer"] for c in trials} == {"mask", "convtasnet"}
    assert len(trials) == 6 * 3 and all(1e-4 <= c.config["lr"] <= 3e-3 for c in trials)
    monkeypatch.setitem(task.tuning.trials, "quick", 3)
    monkeypatch.setitem(enhance.SCALE_CONFIGS, "quick", {**TINY, "valid_utterances": 3})
    out = tiny_setup / "run"
    methods = "enhancer=identity,enhancer=mask,enh_loss=neg_sisdr"
    args = ["--suite", "quick", "--tasks", "enhance", "--methods", methods, "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    assert "valid_pesq_wb" not in next(r for r in records if r["method"]["hp"] == "-")["metrics"]
    mask = {r["method"]["hp"]: r for r in records if r["method"]["enhancer"] == "mask"}
    assert set(mask) == {"default", "trial1", "trial2", "tuned"}
    valid = {hp: mask[hp]["metrics"]["valid_pesq_wb"] for hp in ("default", "trial1", "trial2")}
    assert all(1.0 <= v <= 4.65 for v in valid.values())
    best = max(valid, key=lambda hp: (valid[hp], hp == "default"))
    assert mask["tuned"]["config"]["lr"] == mask[best]["config"]["lr"]
    for hp in ("trial1", "trial2"):  # trials are scored on validation only
        assert "pesq_wb" not in mask[hp]["metrics"] and mask[hp]["config"]["score_test"] is False
        assert read_items(out, mask[hp]["cell_key"]) == {}
    assert "score_test" not in mask["tuned"]["config"] and "pesq_wb" in mask["tuned"]["metrics"]
    # the tuned cell reruns a trial's point with test scores; a default win is a copy
    reused = mask["tuned"]["env"].get("reused_from")
    assert reused == (mask["default"]["cell_key"] if best == "default" else None)
    report = (out / "report.md").read_text()
    assert "### Tuning trials" in report and "valid_pesq_wb" in report
