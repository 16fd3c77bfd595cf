"""Selective-prediction metrics: how well a classifier's confidence ranks its own errors.

AUROC of the confidence for telling correct from wrong predictions, the risk-coverage curve,
AURC and E-AURC. Every public function takes ``probs`` (N, K) and ``labels`` (N,) as in
:mod:`bench.metrics.probs` (checked unless ``validate=False``), works on the confidence (max
probability) and correctness (argmax == label) of each sample, and returns python floats as
fractions (not percent).

Ties in confidence are accepted together in the risk-coverage curve and get average
ranks in the AUROC, so neither depends on the order of the samples.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from bench.metrics.probs import confidence_and_correct

__all__ = [
    "aurc",
    "eaurc",
    "risk_at_coverage_grid",
    "risk_coverage_curve",
    "selective_auroc",
]

_F64 = torch.float64


# ------------------------------------------------------------------------------- cores


def _tie_groups(conf: Tensor, correct: Tensor) -> tuple[Tensor, Tensor]:
    """Per distinct confidence, ascending: number of samples and number correct."""
    _, inverse, counts = torch.unique(conf, sorted=True, return_inverse=True, return_counts=True)
    n_correct = torch.zeros(len(counts), dtype=_F64, device=conf.device)
    return counts.to(_F64), n_correct.index_add_(0, inverse, correct)


def _auroc_core(counts: Tensor, n_correct: Tensor) -> float:
    n_pos = float(n_correct.sum())
    n_neg = float(counts.sum()) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # 1-based average rank of each tie group: last rank minus (size - 1) / 2. All values are
    # half-integers < 2**52, so the rank sum is exact in float64.
    avg_rank = torch.cumsum(counts, 0) - (counts - 1.0) / 2.0
    u = float((n_correct * avg_rank).sum()) - n_pos * (n_pos + 1.0) / 2.0
    return u / (n_pos * n_neg)


def _rc_core(counts: Tensor, n_correct: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Cumulative accepted count, coverage, risk per threshold, highest confidence first."""
    counts_d = counts.flip(0)
    errors_d = (counts - n_correct).flip(0)
    accepted = torch.cumsum(counts_d, 0)
    coverage = accepted / accepted[-1]
    risk = torch.cumsum(errors_d, 0) / accepted
    return accepted, coverage, risk


def _aurc_core(counts: Tensor, n_correct: Tensor) -> float:
    accepted, _, risk = _rc_core(counts, n_correct)
    # coverage_i - coverage_{i-1} == size of tie group i / N
    widths = torch.diff(accepted, prepend=accepted.new_zeros(1))
    return float((risk * widths).sum() / accepted[-1])


def _oracle_aurc(n: int, n_err: int, device: torch.device) -> float:
    """AURC when all correct samples rank above all wrong ones: (1/N) sum_k max(0, k-C)/k."""
    if n_err == 0:
        return 0.0
    n_ok = n - n_err
    k = torch.arange(n_ok + 1, n + 1, dtype=_F64, device=device)
    return float(((k - n_ok) / k).sum() / n)


def _eaurc_core(counts: Tensor, n_correct: Tensor) -> float:
    n = int(round(float(counts.sum())))
    n_err = n - int(round(float(n_correct.sum())))
    excess = _aurc_core(counts, n_correct) - _oracle_aurc(n, n_err, counts.device)
    return max(excess, 0.0)  # >= 0 exactly (oracle risk is minimal at every coverage)


# ------------------------------------------------------------------------------ public


def selective_auroc(probs: Any, labels: Any, validate: bool = True) -> float:
    """AUROC of the confidence for telling correct (positive) from wrong predictions.

    AUROC = (R_correct - n_c (n_c + 1) / 2) / (n_c n_w), R = sum of average ranks
    (Mann-Whitney U; Galil, Dabbah, El-Yaniv 2023, "What can we learn from the selective
    prediction and uncertainty estimation performance of 523 ImageNet classifiers").
    Ties count 1/2, as in sklearn's roc_auc_score. nan if all correct or all wrong.
    """
    conf, correct = confidence_and_correct(probs, labels, validate)
    return _auroc_core(*_tie_groups(conf, correct))


def risk_coverage_curve(probs: Any, labels: Any, validate: bool = True) -> tuple[Tensor, Tensor]:
    """(coverage, risk) at each distinct confidence threshold, highest confidence first.

    Accepting samples with conf >= t: coverage = accepted / N in (0, 1], risk = error rate
    of the accepted (Geifman & El-Yaniv 2017). Tied samples are accepted together.
    """
    conf, correct = confidence_and_correct(probs, labels, validate)
    _, coverage, risk = _rc_core(*_tie_groups(conf, correct))
    return coverage, risk


def aurc(probs: Any, labels: Any, validate: bool = True) -> float:
    """Area under the risk-coverage curve.

    AURC = sum_i risk_i (coverage_i - coverage_{i-1}), coverage_0 = 0   (Geifman, Uziel,
    El-Yaniv 2019, "Bias-reduced uncertainty estimation for deep neural classifiers").
    Without ties this is mean_{k=1..N} (errors among the k most confident) / k.
    """
    conf, correct = confidence_and_correct(probs, labels, validate)
    return _aurc_core(*_tie_groups(conf, correct))


def eaurc(probs: Any, labels: Any, validate: bool = True) -> float:
    """Excess AURC: AURC minus that of an oracle ranking every correct above every wrong.

    E-AURC = AURC - AURC*, AURC* = (1/N) sum_{k>C} (k - C)/k with C correct samples
    (Geifman et al. 2019); removes the part of AURC that only reflects the accuracy.
    """
    conf, correct = confidence_and_correct(probs, labels, validate)
    return _eaurc_core(*_tie_groups(conf, correct))


def risk_at_coverage_grid(
    probs: Any, labels: Any, grid_points: int = 101, validate: bool = True
) -> tuple[list[float], list[float]]:
    """Risk at coverages k/(G-1), k = 1..G-1, for averaging risk-coverage curves over seeds.

    Step interpolation: the risk of the smallest threshold set whose coverage is at least
    the grid coverage. Compared in integers (accepted * (G-1) >= k * N), so no rounding.
    """
    if isinstance(grid_points, bool) or int(grid_points) != grid_points or grid_points < 2:
        raise ValueError(f"grid_points must be an integer >= 2, got {grid_points!r}")
    g = int(grid_points) - 1
    conf, correct = confidence_and_correct(probs, labels, validate)
    accepted, _, risk = _rc_core(*_tie_groups(conf, correct))
    accepted = accepted.round().long()
    n = int(accepted[-1])
    targets = torch.arange(1, g + 1, device=accepted.device) * n
    idx = torch.searchsorted(accepted * g, targets)  # first i with accepted_i / N >= k / g
    return [k / g for k in range(1, g + 1)], risk[idx].tolist()
