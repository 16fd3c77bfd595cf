"""Judging speed from paired A/B timings: the ABBA order of the two sides per round, and a
paired test on the per-round log ratios, by CPU time when the machine is loaded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.report.compare import FASTER, NOT_SIGNIFICANT, SAME, SLOWER
from bench.report.stats import shift_pvalue as paired_p

NEW, OLD = "new", "old"


def schedule(rounds: int) -> list[tuple[str, str]]:
    """The order of the two sides in each round: NEW OLD, OLD NEW, NEW OLD, ... (ABBA), so
    a drift of the machine's speed during the run cancels over pairs of rounds."""
    return [(NEW, OLD) if r % 2 == 0 else (OLD, NEW) for r in range(rounds)]


@dataclass(frozen=True)
class Sample:
    """One measurement of one side, per unit of work (a step, a call, a cell)."""

    wall_s: float
    cpu_s: float
    load: float  # 1-minute load average, mean of before and after


@dataclass(frozen=True)
class Judgement:
    clock: str  # "cpu" or "wall"
    load: float
    ratio: float  # geometric mean over rounds of old time / new time (> 1: new is faster)
    p: float | None
    verdict: str
    rounds: int
    new_s: float  # geometric means of the judged clock
    old_s: float


def judge(
    new: list[Sample],
    old: list[Sample],
    cores: int,
    alpha: float = 0.05,
    tolerance: float = 0.25,
    cpu_clock: bool = True,
) -> Judgement:
    """Speed of NEW against OLD from paired samples (one pair per round).

    The clock is CPU time when the mean load was above ``cores`` (and ``cpu_clock``: the
    device is the CPU), else wall time. SLOWER when the ratio is below 1 - ``tolerance``
    and the paired test is significant at ``alpha``; FASTER above 1 + ``tolerance``
    likewise; a change past the tolerance without significance is NOT_SIGNIFICANT."""
    if len(new) != len(old) or not new:
        raise ValueError("judge needs one NEW and one OLD sample per round")
    load = float(np.mean([s.load for s in new + old]))
    clock = "cpu" if cpu_clock and load > cores else "wall"

    def times(samples: list[Sample]) -> np.ndarray:
        return np.array([max(getattr(s, f"{clock}_s"), 1e-9) for s in samples])

    t_new, t_old = times(new), times(old)
    logs = np.log(t_old) - np.log(t_new)
    ratio = float(np.exp(logs.mean()))
    p = paired_p(logs)  # a t-test: with ~5 rounds Wilcoxon cannot reach 0.05 (min 2/2^n)
    outside = ratio < 1 - tolerance or ratio > 1 + tolerance
    if p is not None and p < alpha and ratio < 1 - tolerance:
        verdict = SLOWER
    elif p is not None and p < alpha and ratio > 1 + tolerance:
        verdict = FASTER
    else:
        verdict = NOT_SIGNIFICANT if outside else SAME
    geo = lambda t: float(np.exp(np.log(t).mean()))  # noqa: E731
    return Judgement(clock, load, ratio, p, verdict, len(new), geo(t_new), geo(t_old))
