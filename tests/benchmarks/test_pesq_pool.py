"""Throughput of the parallel PESQ/STOI/SI-SDR pass (a benchmark, not a timed test).

    python -m pytest tests/benchmarks/test_pesq_pool.py --benchmark-enable -s

prints utterances scored per second (PESQ-WB + PESQ-NB + STOI + ESTOI + SI-SDR each) with
one worker process and with one per core; the pool should scale with the cores.
"""

import os
import statistics
import time

import numpy as np
import pytest

from bench.metrics.enhancement import get_pool, score_utterances

SR = 16000
N_UTTERANCES = 16


def utterances():
    rng = np.random.default_rng(0)
    t = np.arange(int(2.5 * SR)) / SR
    out = []
    for k in range(N_UTTERANCES):
        phase = 2 * np.pi * np.cumsum(110 + 10 * k + 25 * np.sin(2 * np.pi * 0.8 * t)) / SR
        clean = sum(np.sin(j * phase) / j for j in range(1, 12)) * (
            np.sin(2 * np.pi * 1.7 * t) > -0.3
        )
        clean = (0.3 * clean / np.abs(clean).max()).astype(np.float32)
        out.append((clean, clean + 0.05 * rng.standard_normal(clean.size).astype(np.float32)))
    return out


@pytest.mark.parametrize("workers", sorted({1, os.cpu_count() or 1}))
def test_pesq_pool_throughput(benchmark, workers):
    pairs = utterances()
    cleans, noisy = [c for c, _ in pairs], [n for _, n in pairs]
    if workers > 1:
        get_pool(workers)  # start the workers before the clock, as a run reuses its pool
        score_utterances(cleans[:workers], noisy[:workers], SR, workers)
    seconds = []

    def score():
        t0 = time.perf_counter()
        out = score_utterances(cleans, noisy, SR, workers)
        seconds.append(time.perf_counter() - t0)
        return out

    # own clock too: with --benchmark-disable (the default) pedantic runs once, no stats
    result = benchmark.pedantic(score, rounds=3, iterations=1)
    rate = N_UTTERANCES / statistics.median(seconds)
    benchmark.extra_info["utterances_per_s"] = rate
    print(f"\nPESQ pool, {workers} worker(s): {rate:.1f} utterances/s (2.5 s each)")
    assert all(s.pesq_wb is not None for s in result)
