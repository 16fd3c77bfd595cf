"""Speech-enhancement metrics: PESQ (wide- and narrow-band), STOI, ESTOI, SI-SDR.

- PESQ: ITU-T P.862 through the ``pesq`` package (P.862.2 wide-band at 16 kHz, P.862
  narrow-band with the P.862.1 MOS-LQO mapping). PESQ is slow and single-threaded, so the
  utterances of a set are scored in a process pool (one pool per worker count, reused for
  the whole run). PESQ refuses some inputs (no speech detected, too short): such an
  utterance is *failed* for PESQ, counted and named, never a number and never a crash.
- STOI (Taal et al. 2011) and ESTOI (Jensen & Taal 2016) through ``pystoi``.
- SI-SDR (Le Roux et al. 2019, "SDR - half-baked or well done?", eq. 4), written here.

Every function here is pure and torch-free, so the pool's worker processes start quickly.
"""

from __future__ import annotations

import atexit
import math
import multiprocessing
import multiprocessing.util
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.metrics import weighted

PESQ_RATES = {"wb": (16000,), "nb": (8000, 16000)}
SCORE_NAMES = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr")


def si_sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = 1e-12) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019, eq. 4), both signals zero-meaned:

    s_target = (<ŝ, s> / ||s||²) s,  e = ŝ − s_target,  SI-SDR = 10 log10(||s_target||² / ||e||²).
    """
    s = np.asarray(reference, dtype=np.float64)
    s_hat = np.asarray(estimate, dtype=np.float64)
    if s.shape != s_hat.shape or s.ndim != 1:
        raise ValueError(
            f"si_sdr needs two 1-D signals of one length, got {s.shape}, {s_hat.shape}"
        )
    s = s - s.mean()
    s_hat = s_hat - s_hat.mean()
    alpha = np.dot(s_hat, s) / (np.dot(s, s) + eps)
    target = alpha * s
    noise = s_hat - target
    return float(10 * np.log10((np.dot(target, target) + eps) / (np.dot(noise, noise) + eps)))


def pesq_score(reference: np.ndarray, degraded: np.ndarray, sample_rate: int, mode: str) -> float:
    """PESQ MOS-LQO of ``degraded`` against ``reference``; raises what ``pesq`` raises."""
    from pesq import pesq

    if sample_rate not in PESQ_RATES[mode]:
        raise ValueError(
            f"PESQ-{mode.upper()} needs audio at {' or '.join(map(str, PESQ_RATES[mode]))} Hz, "
            f"got {sample_rate} Hz; resample the corpus first"
        )
    return float(pesq(sample_rate, reference, degraded, mode))


@dataclass(frozen=True)
class UtteranceScore:
    """The scores of one utterance; a PESQ that failed is None, with its reason in errors."""

    pesq_wb: float | None
    pesq_nb: float | None
    stoi: float | None  # None: undefined (silent reference)
    estoi: float | None
    si_sdr: float
    errors: tuple[str, ...] = ()

    @property
    def pesq_failed(self) -> bool:
        return self.pesq_wb is None or self.pesq_nb is None

    def get(self, name: str) -> float | None:
        return getattr(self, name)


def stoi_score(clean: np.ndarray, estimate: np.ndarray, sample_rate: int, extended: bool) -> float:
    """pystoi's STOI (ESTOI if ``extended``) with its dithering made deterministic: ESTOI
    adds machine-epsilon noise drawn from numpy's global generator, so its last digits
    would depend on what drew from that stream before (the cell, the pool's history).
    It runs on a fixed draw here; the global stream is left as it was."""
    from pystoi import stoi

    state = np.random.get_state()
    np.random.seed(0)
    try:
        return float(stoi(clean, estimate, sample_rate, extended=extended))
    finally:
        np.random.set_state(state)


def score_utterance(clean: np.ndarray, estimate: np.ndarray, sample_rate: int) -> UtteranceScore:
    """All metrics of one (clean, estimate) pair; PESQ errors become None plus a message."""
    clean = np.asarray(clean, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if clean.shape != estimate.shape:
        raise ValueError(f"clean {clean.shape} and estimate {estimate.shape} differ in length")
    pesqs: dict[str, float | None] = {}
    errors: list[str] = []
    for mode in ("wb", "nb"):
        try:
            pesqs[mode] = pesq_score(clean, estimate, sample_rate, mode)
        except Exception as exc:  # noqa: BLE001 (pesq raises its own and C-level errors)
            pesqs[mode] = None
            errors.append(f"pesq_{mode}: {type(exc).__name__}: {exc}")
    intelligibility: dict[str, float | None] = {"stoi": None, "estoi": None}
    if np.any(clean):  # STOI of a silent reference is undefined (pystoi returns noise)
        for name in intelligibility:
            intelligibility[name] = stoi_score(clean, estimate, sample_rate, name == "estoi")
    else:
        errors.append("stoi: the clean reference is silent")
    return UtteranceScore(
        pesq_wb=pesqs["wb"],
        pesq_nb=pesqs["nb"],
        stoi=intelligibility["stoi"],
        estoi=intelligibility["estoi"],
        si_sdr=si_sdr(clean, estimate),
        errors=tuple(errors),
    )


def _score_job(args: tuple[np.ndarray, np.ndarray, int]) -> UtteranceScore:
    return score_utterance(*args)


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: leave when the run that owns the pool dies (killed runs would
    otherwise leave workers waiting on a queue that no one writes to)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def get_pool(workers: int) -> ProcessPoolExecutor:
    """The run's process pool of ``workers`` processes (made once, shut down at exit).

    Forked on Linux, as torch's DataLoader workers are (the workers use no torch, and fork
    needs no importable ``__main__``, so it works from a REPL or ``python -``); spawned
    elsewhere (macOS, Windows), where fork is unsafe or missing.
    """
    if workers not in _POOLS:
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        _POOLS[workers] = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        # in a process that is itself a multiprocessing worker (``--jobs N``), exit joins its
        # children *before* atexit runs, so an open pool hung it (and the run) forever; a
        # finalizer runs first, and its priority is above the pool queues' own (10), which
        # would otherwise close the queue that carries the workers' stop signal
        multiprocessing.util.Finalize(None, shutdown_pools, exitpriority=100)
    return _POOLS[workers]


@atexit.register
def shutdown_pools() -> None:
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()


def _pool_map(job: Callable[[Any], Any], jobs: list, workers: int | None) -> list:
    """``job`` over ``jobs`` in order, on the reused pool (``workers`` <= 1: in this process).

    A broken pool (a worker killed) is replaced once; if it breaks again the rest is done
    in this process with a warning, so a run does not lose its scores.
    """
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(jobs) <= 1:
        return [job(j) for j in jobs]
    chunk = max(1, math.ceil(len(jobs) / (4 * workers)))
    try:
        return list(get_pool(workers).map(job, jobs, chunksize=chunk))
    except BrokenProcessPool:
        _POOLS.pop(workers, None)
        try:
            return list(get_pool(workers).map(job, jobs, chunksize=chunk))
        except BrokenProcessPool:
            _POOLS.pop(workers, None)
            warnings.warn(
                "the scoring process pool broke twice; scoring in this process instead",
                RuntimeWarning,
                stacklevel=3,
            )
            return [job(j) for j in jobs]


def score_utterances(
    cleans: Sequence[np.ndarray],
    estimates: Sequence[np.ndarray],
    sample_rate: int,
    workers: int | None = None,
) -> list[UtteranceScore]:
    """Scores of every pair, in order; ``workers`` processes (1: in this process)."""
    if len(cleans) != len(estimates):
        raise ValueError(f"{len(cleans)} clean signals but {len(estimates)} estimates")
    jobs = [
        (np.asarray(c, np.float32), np.asarray(e, np.float32), sample_rate)
        for c, e in zip(cleans, estimates, strict=True)
    ]
    return _pool_map(_score_job, jobs, workers)


def _pesq_job(args: tuple[np.ndarray, np.ndarray, int, str]) -> float | None:
    try:
        return pesq_score(*args)
    except Exception:  # noqa: BLE001 (pesq raises its own and C-level errors)
        return None


def pesq_scores(
    references: Sequence[np.ndarray],
    degraded: Sequence[np.ndarray],
    sample_rate: int,
    mode: str = "wb",
    workers: int | None = None,
) -> list[float | None]:
    """PESQ of every pair, in order (None where pesq fails), on the run's reused pool."""
    if len(references) != len(degraded):
        raise ValueError(f"{len(references)} references but {len(degraded)} degraded signals")
    if mode not in PESQ_RATES:
        raise ValueError(f"PESQ mode {mode!r} is not one of {sorted(PESQ_RATES)}")
    jobs = [
        (np.asarray(r, np.float32), np.asarray(d, np.float32), sample_rate, mode)
        for r, d in zip(references, degraded, strict=True)
    ]
    return _pool_map(_pesq_job, jobs, workers)


@dataclass
class EnhancementSummary:
    """Means over utterances, improvements over the noisy input, and PESQ failures."""

    metrics: dict[str, float]
    failed: list[tuple[int, str]] = field(default_factory=list)  # (utterance index, reason)


def _mean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else float("nan")


def summarize(
    scores: Sequence[UtteranceScore], noisy: Sequence[UtteranceScore] | None = None
) -> EnhancementSummary:
    """Mean of each metric over the utterances that have it, and ``<metric>_gain``: the
    mean per-utterance improvement over the noisy input (over utterances where both
    exist). PESQ means leave failed utterances out; ``pesq_failures`` counts them."""
    metrics: dict[str, float] = {}
    for name in SCORE_NAMES:
        metrics[name] = _mean([s.get(name) for s in scores])
    if noisy is not None:
        if len(noisy) != len(scores):
            raise ValueError(f"{len(scores)} scores but {len(noisy)} noisy-input scores")
        for name in SCORE_NAMES:
            pairs = [(a.get(name), b.get(name)) for a, b in zip(scores, noisy, strict=True)]
            diffs: list[float | None] = [x - y for x, y in pairs if x is not None and y is not None]
            metrics[f"{name}_gain"] = _mean(diffs)
    failed = [(i, "; ".join(s.errors)) for i, s in enumerate(scores) if s.pesq_failed]
    metrics["pesq_failures"] = float(len(failed))
    return EnhancementSummary(metrics, failed)


def enhancement_items(
    ids: Sequence[str], scores: Sequence[UtteranceScore], noisy: Sequence[UtteranceScore]
) -> dict[str, np.ndarray]:
    """Per-utterance item columns: each score, the noisy input's (``noisy_<name>``, for the
    gains), NaN where a score is undefined (failed PESQ, silent reference), and
    ``pesq_failed`` (1 where PESQ-WB or -NB failed)."""
    if not len(ids) == len(scores) == len(noisy):
        raise ValueError(f"{len(ids)} ids, {len(scores)} scores, {len(noisy)} noisy scores")

    def column(rows: Sequence[UtteranceScore], name: str) -> np.ndarray:
        return np.array([np.nan if s.get(name) is None else s.get(name) for s in rows], np.float64)

    items = {"item_id": np.asarray(ids, dtype=str)}
    for name in SCORE_NAMES:
        items[name], items[f"noisy_{name}"] = column(scores, name), column(noisy, name)
    items["pesq_failed"] = np.array([s.pesq_failed for s in scores], dtype=np.int8)
    return items


def metrics_from_items(items: dict[str, np.ndarray]) -> dict[str, float]:
    """``summarize`` from the item columns of ``enhancement_items``: means over the
    utterances that have a score, mean gains where both scores exist, PESQ failures."""

    def mean(values: np.ndarray) -> float:
        kept = values[~np.isnan(values)]
        return float(np.mean(kept)) if len(kept) else float("nan")

    metrics = {name: mean(items[name]) for name in SCORE_NAMES}
    for name in SCORE_NAMES:
        metrics[f"{name}_gain"] = mean(items[name] - items[f"noisy_{name}"])
    metrics["pesq_failures"] = float(np.sum(items["pesq_failed"]))
    return metrics


def enhancement_forms() -> dict[str, weighted.ItemForm]:
    """Each score and its gain over the noisy input as item forms: means over the
    utterances that have them (``metrics_from_items``), for resampling."""
    forms: dict[str, weighted.ItemForm] = {}
    for name in SCORE_NAMES:
        forms[name] = weighted.Mean("test", weighted.column(name))
        forms[f"{name}_gain"] = weighted.Mean("test", _gain(name))
    return forms


def _gain(name: str):
    """Per-utterance gain of a score over the noisy input (NaN where either failed)."""
    return lambda c: c[name] - c[f"noisy_{name}"]
