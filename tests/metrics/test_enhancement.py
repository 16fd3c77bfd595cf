"""Enhancement metrics: SI-SDR by hand, PESQ/STOI behaviour, the PESQ pool's failures,
and cross-checks against torchmetrics where it is installed."""

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bench.metrics import METRICS
from bench.metrics.enhancement import (
    SCORE_NAMES,
    UtteranceScore,
    score_utterance,
    score_utterances,
    si_sdr,
    summarize,
)

SR = 16000


def speech_like(seconds=2.0, seed=0):
    """Harmonic voiced segments with pitch glides and pauses: enough 'speech' for PESQ."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 15))
    envelope = (np.sin(2 * np.pi * 1.5 * t) > -0.2).astype(float)
    x = x * np.convolve(envelope, np.hanning(400) / 200, mode="same")
    x = x + 1e-3 * rng.standard_normal(x.size)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def test_si_sdr_hand_computed_cases():
    s = np.array([1.0, -1.0, 2.0, -2.0])  # zero mean already
    assert si_sdr(s, 3 * s) > 100  # scale-invariant: any gain is perfect
    e = np.array([1.0, 1.0, -1.0, -1.0])  # orthogonal to s, zero mean
    # s_target = s, error = e: 10 log10(||s||² / ||e||²) = 10 log10(10 / 4)
    assert si_sdr(s, s + e) == pytest.approx(10 * math.log10(10 / 4), abs=1e-9)
    assert si_sdr(s, s + 0.5 * e) == pytest.approx(10 * math.log10(10 / 1), abs=1e-9)
    # a DC offset is removed first (Le Roux et al. zero-mean both signals)
    assert si_sdr(s + 5, s + e - 3) == pytest.approx(10 * math.log10(10 / 4), abs=1e-9)


def test_si_sdr_matches_formula_on_random_signals():
    rng = np.random.default_rng(1)
    s, n = rng.standard_normal(1000), rng.standard_normal(1000)
    est = 0.7 * s + 0.2 * n
    s0, e0 = s - s.mean(), est - est.mean()
    target = (e0 @ s0) / (s0 @ s0) * s0
    expected = 10 * np.log10((target @ target) / ((e0 - target) @ (e0 - target)))
    assert si_sdr(s, est) == pytest.approx(expected, rel=1e-9)


def test_si_sdr_matches_torchmetrics():
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.audio")
    rng = np.random.default_rng(2)
    for _ in range(5):
        s = rng.standard_normal(4000)
        est = s + rng.uniform(0.1, 2) * rng.standard_normal(4000)
        ref = tm.scale_invariant_signal_distortion_ratio(
            torch.from_numpy(est), torch.from_numpy(s), zero_mean=True
        )
        assert si_sdr(s, est) == pytest.approx(float(ref), abs=1e-6)


def test_pesq_of_clean_is_near_max_and_falls_with_noise():
    clean = speech_like()
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(clean.size).astype(np.float32)
    top = score_utterance(clean, clean, SR)
    assert top.pesq_wb > 4.5 and top.pesq_nb > 4.4  # maxima: 4.64 (WB), 4.55 (NB)
    assert top.stoi > 0.99 and top.estoi > 0.99 and not top.errors
    scores = [score_utterance(clean, clean + g * 0.1 * noise, SR) for g in (0.05, 0.2, 0.8)]
    for name in ("pesq_wb", "pesq_nb", "stoi", "si_sdr"):
        values = [s.get(name) for s in scores]
        assert values == sorted(values, reverse=True), name


def test_pesq_matches_torchmetrics_wrappers():
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.audio")
    clean = speech_like(seed=4)
    noisy = clean + 0.02 * np.random.default_rng(4).standard_normal(clean.size).astype(np.float32)
    ours = score_utterance(clean, noisy, SR)
    c, n = torch.from_numpy(clean), torch.from_numpy(noisy)
    for mode, value in (("wb", ours.pesq_wb), ("nb", ours.pesq_nb)):
        ref = tm.perceptual_evaluation_speech_quality(n, c, SR, mode)
        assert value == pytest.approx(float(ref), abs=1e-4)
    try:
        stoi_ref = tm.short_time_objective_intelligibility(n, c, SR)
    except (ImportError, ModuleNotFoundError):
        return
    assert ours.stoi == pytest.approx(float(stoi_ref), abs=1e-4)


def test_pool_reports_failed_utterances_and_keeps_order():
    clean = speech_like(seed=5)
    silent = np.zeros_like(clean)
    noisy = clean + 0.05 * np.random.default_rng(5).standard_normal(clean.size).astype(np.float32)
    cleans = [clean, silent, clean]
    estimates = [noisy, silent, clean]
    pooled = score_utterances(cleans, estimates, SR, workers=2)
    serial = score_utterances(cleans, estimates, SR, workers=1)
    for a, b in zip(pooled, serial, strict=True):  # same values, up to BLAS rounding
        assert a.errors == b.errors
        for name in SCORE_NAMES:
            if b.get(name) is None:  # a failed score is None on both sides, not a number
                assert a.get(name) is None, name
            else:
                assert a.get(name) == pytest.approx(b.get(name), rel=1e-6, abs=1e-9)
    assert pooled[1].pesq_wb is None and pooled[1].pesq_nb is None
    assert any("pesq_wb" in e for e in pooled[1].errors)
    assert pooled[0].pesq_wb is not None and pooled[2].pesq_wb > pooled[0].pesq_wb
    summary = summarize(pooled)
    assert summary.metrics["pesq_failures"] == 1
    assert [i for i, _ in summary.failed] == [1]
    # the failed utterance is left out of the mean, never counted as a number
    assert summary.metrics["pesq_wb"] == pytest.approx((pooled[0].pesq_wb + pooled[2].pesq_wb) / 2)


def test_summary_gains_are_paired_differences():
    def score(p, s):
        return UtteranceScore(p, p, s, s, 10 * s)

    noisy = [score(1.0, 0.5), score(None, 0.6), score(2.0, 0.7)]
    enhanced = [score(1.5, 0.6), score(3.0, 0.7), score(2.1, 0.6)]
    m = summarize(enhanced, noisy).metrics
    assert m["pesq_wb_gain"] == pytest.approx((0.5 + 0.1) / 2)  # utterance 2 has no pair
    assert m["stoi_gain"] == pytest.approx((0.1 + 0.1 - 0.1) / 3)
    assert m["pesq_failures"] == 0 and m["pesq_wb"] == pytest.approx(6.6 / 3)


def test_every_metric_is_declared():
    for name in SCORE_NAMES:
        assert name in METRICS and f"{name}_gain" in METRICS
    assert "pesq_failures" in METRICS and not METRICS["pesq_failures"].ranked


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="length"):
        score_utterance(np.zeros(100), np.zeros(90), SR)
    with pytest.raises(ValueError, match="8000 or 16000|16000"):
        from bench.metrics.enhancement import pesq_score

        pesq_score(np.zeros(100), np.zeros(100), 44100, "wb")


def test_a_jobs_worker_that_scored_with_the_pool_exits(tmp_path):
    """A ``--jobs N`` worker (itself a multiprocessing child) that used the scoring pool must
    exit when its pool is shut down: exit joins a process's children before atexit runs, so
    the open scoring pool hung the worker, and the run, forever (a whole default run waited
    at the end of its first stage)."""
    script = tmp_path / "nested_pools.py"
    script.write_text(
        textwrap.dedent(
            """
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            def cell(_):
                from bench.metrics import enhancement
                return enhancement._pool_map(abs, [-1, -2, -3, -4], 2)

            if __name__ == "__main__":
                spawn = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(1, mp_context=spawn) as jobs:
                    print(jobs.submit(cell, 0).result())
                print("exited")
            """
        )
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(script)], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[1,", "2,", "3,", "4]", "exited"]
