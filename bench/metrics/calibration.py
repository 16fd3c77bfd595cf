"""Calibration metrics for classifiers: accuracy, NLL, Brier score, ECE, MCE, adaptive ECE.

Every public function takes ``probs`` (N, K) class probabilities and ``labels`` (N,) integer
class ids, as torch tensors or numpy arrays (the input contract of :mod:`bench.metrics.probs`),
and returns python floats as fractions (not percent). The selective-prediction metrics (AUROC,
risk-coverage, AURC, E-AURC) are in :mod:`bench.metrics.selective` and importable from here.

Each metric is a thin wrapper: convert (and, unless ``validate=False``, check) the inputs
once with :func:`check_probs_labels`, then call a small private core that works on
``conf`` (max probability) and ``correct`` (argmax == label, as 0/1 float64). Hot loops
such as bootstrap resampling can validate once and pass ``validate=False`` afterwards.
``metrics_from_items`` computes every table metric (both kinds) from per-item columns.

Reliability bins, as pinned by tests, are equal-width and half-open ``(lo, hi]``; a
confidence of exactly ``k/M`` belongs to bin ``k-1``, 0.0 to the first bin and 1.0 to the
last. Edges are the exact float64 values ``k/M``, so a float64 confidence of e.g. 0.6 ==
9/15 lands in bin 8. A float32 0.6 is 0.6000000238 in float64 and lands in bin 9: pass
float64 if it matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bench.metrics.probs import (
    ROW_SUM_TOL,
    _conf_correct,
    _convert,
    check_probs_labels,
    confidence_and_correct,
)
from bench.metrics.selective import (
    _aurc_core,
    _auroc_core,
    _eaurc_core,
    _tie_groups,
    aurc,
    eaurc,
    risk_at_coverage_grid,
    risk_coverage_curve,
    selective_auroc,
)

NLL_EPS = 1e-12  # floor on the true-class probability inside the log

__all__ = [
    "NLL_EPS",
    "ROW_SUM_TOL",
    "ReliabilityBins",
    "accuracy",
    "adaptive_ece",
    "aurc",
    "brier",
    "calibration_metrics",
    "check_probs_labels",
    "confidence_and_correct",
    "eaurc",
    "ece",
    "ece_from_items",
    "mce",
    "nll",
    "reliability_bins",
    "risk_at_coverage_grid",
    "risk_coverage_curve",
    "selective_auroc",
]

_F64 = torch.float64


def _inputs(probs: Any, labels: Any, validate: bool) -> tuple[Tensor, Tensor]:
    # as bench.metrics.probs._inputs, but resolving check_probs_labels in this module
    return check_probs_labels(probs, labels) if validate else _convert(probs, labels)


def _check_n_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


# ------------------------------------------------------------------------------- cores


def _nll_core(p: Tensor, y: Tensor, eps: float) -> float:
    return float(_nll_items(p, y, eps).mean())


def _nll_items(p: Tensor, y: Tensor, eps: float) -> Tensor:
    return -p.gather(1, y[:, None]).to(_F64).clamp_min(eps).log().squeeze(1)


def _brier_items(p: Tensor, y: Tensor) -> Tensor:
    # sum_k (p_k - y_k)^2 == sum_k p_k^2 - 2 p_y + 1, without building the one-hot matrix
    p = p.to(_F64)
    per_sample = (p * p).sum(dim=1) - 2.0 * p.gather(1, y[:, None]).squeeze(1) + 1.0
    return per_sample.clamp_min(0.0)


def _brier_core(p: Tensor, y: Tensor) -> float:
    return float(_brier_items(p, y).mean())


def _bin_sums(conf: Tensor, correct: Tensor, n_bins: int) -> tuple[Tensor, ...]:
    """Equal-width (lo, hi] bins: edges, count, sum of conf and of correct per bin."""
    edges = torch.arange(0, n_bins + 1, dtype=_F64, device=conf.device) / n_bins  # exact k/M
    # bucketize(right=False) gives i with upper[i-1] < c <= upper[i]: c == k/M -> bin k-1,
    # 0.0 -> bin 0; the clamp only matters for c > 1 from unvalidated input.
    idx = torch.bucketize(conf, edges[1:]).clamp_(max=n_bins - 1)
    count = torch.bincount(idx, minlength=n_bins).to(_F64)
    zeros = torch.zeros(n_bins, dtype=_F64, device=conf.device)
    conf_sum = zeros.index_add(0, idx, conf)
    correct_sum = zeros.index_add(0, idx, correct)
    return edges, count, conf_sum, correct_sum


def _ece_from_sums(count: Tensor, conf_sum: Tensor, correct_sum: Tensor) -> float:
    # (n_b/N) |acc_b - conf_b| == |correct_sum_b - conf_sum_b| / N, and 0 for empty bins
    return float((correct_sum - conf_sum).abs().sum() / count.sum())


def _mce_from_sums(count: Tensor, conf_sum: Tensor, correct_sum: Tensor) -> float:
    full = count > 0
    return float(((correct_sum[full] - conf_sum[full]).abs() / count[full]).max())


def _adaptive_ece_core(conf: Tensor, correct: Tensor, n_bins: int) -> float:
    n = conf.numel()
    b = min(n_bins, n)
    # Sort by (conf, correct) lexicographically: partition wrong-before-correct, then a
    # stable sort by conf. Breaking confidence ties by `correct` (not by input position)
    # keeps the value independent of sample order.
    order = torch.cat([(correct == 0).nonzero().squeeze(1), (correct != 0).nonzero().squeeze(1)])
    order = order[torch.argsort(conf[order], stable=True)]
    # numpy.array_split group sizes: the first r groups hold q + 1 samples, the rest q.
    q, r = divmod(n, b)
    pos = torch.arange(n, device=conf.device)
    head = r * (q + 1)
    group = torch.where(pos < head, pos // (q + 1), r + (pos - head) // q)
    zeros = torch.zeros(b, dtype=_F64, device=conf.device)
    gap = zeros.index_add(0, group, correct[order]) - zeros.index_add(0, group, conf[order])
    return float(gap.abs().sum() / n)


# ------------------------------------------------------------------------------ public


def accuracy(probs: Any, labels: Any, validate: bool = True) -> float:
    """Top-1 accuracy: fraction of samples whose argmax is the label."""
    _, correct = _conf_correct(*_inputs(probs, labels, validate))
    return float(correct.mean())


def nll(probs: Any, labels: Any, eps: float = NLL_EPS, validate: bool = True) -> float:
    """Mean negative log-likelihood of the true class in nats, -mean log max(p_y, eps).

    A strictly proper score: rewards both accuracy and calibration. The clamp keeps one
    zero-probability label from making it infinite.
    """
    p, y = _inputs(probs, labels, validate)
    return _nll_core(p, y, eps)


def brier(probs: Any, labels: Any, validate: bool = True) -> float:
    """Multiclass Brier score, mean_i sum_k (p_ik - y_ik)^2 in [0, 2].

    Brier 1950, "Verification of forecasts expressed in terms of probability". Not halved:
    for K=2 this is twice the usual binary Brier score (sklearn's default for binary).
    """
    p, y = _inputs(probs, labels, validate)
    return _brier_core(p, y)


def _per_bin(sums: list[float], counts: list[float]) -> list[float]:
    return [s / c if c > 0 else math.nan for s, c in zip(sums, counts, strict=True)]


@dataclass
class ReliabilityBins:
    """Per-bin sums for a reliability diagram; plain lists so they serialise to JSON.

    Sums rather than means so bins from several runs or shards can be added together.
    """

    edges: list[float]  # (M+1,) k/M
    count: list[float]  # (M,) samples per bin
    conf_sum: list[float]  # (M,) sum of max-confidence per bin
    correct_sum: list[float]  # (M,) number of correct predictions per bin

    @property
    def n_bins(self) -> int:
        return len(self.count)

    def mean_conf(self) -> list[float]:
        """Mean confidence per bin; nan for empty bins."""
        return _per_bin(self.conf_sum, self.count)

    def accuracy(self) -> list[float]:
        """Accuracy per bin; nan for empty bins."""
        return _per_bin(self.correct_sum, self.count)


def reliability_bins(
    probs: Any, labels: Any, n_bins: int = 15, validate: bool = True
) -> ReliabilityBins:
    """Equal-width (lo, hi] confidence bins of Guo et al. 2017, with counts and sums.

    Guo, Pleiss, Sun, Weinberger 2017, "On calibration of modern neural networks", sec. 2.
    Confidence k/M goes to bin k-1, 0.0 to the first bin, 1.0 to the last.
    """
    n_bins = _check_n_bins(n_bins)
    conf, correct = _conf_correct(*_inputs(probs, labels, validate))
    edges, count, conf_sum, correct_sum = _bin_sums(conf, correct, n_bins)
    return ReliabilityBins(edges.tolist(), count.tolist(), conf_sum.tolist(), correct_sum.tolist())


def ece(probs: Any, labels: Any, n_bins: int = 15, validate: bool = True) -> float:
    """Expected calibration error over equal-width confidence bins.

    ECE = sum_b (n_b / N) |acc_b - conf_b|   (Guo et al. 2017, eq. 3)
    """
    conf, correct = _conf_correct(*_inputs(probs, labels, validate))
    return ece_from_items(conf, correct, n_bins)


def ece_from_items(confidence: Any, correct: Any, n_bins: int = 15) -> float:
    """ECE from per-item confidences and 0/1 correctness (``ece`` computes it this way)."""
    n_bins = _check_n_bins(n_bins)
    conf, hit = (
        x.to(_F64) if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x), dtype=_F64)
        for x in (confidence, correct)
    )
    return _ece_from_sums(*_bin_sums(conf, hit, n_bins)[1:])


def mce(probs: Any, labels: Any, n_bins: int = 15, validate: bool = True) -> float:
    """Maximum calibration error: max over non-empty bins of |acc_b - conf_b|.

    MCE = max_b |acc_b - conf_b|   (Guo et al. 2017, eq. 5; Naeini et al. 2015)
    """
    n_bins = _check_n_bins(n_bins)
    conf, correct = _conf_correct(*_inputs(probs, labels, validate))
    return _mce_from_sums(*_bin_sums(conf, correct, n_bins)[1:])


def adaptive_ece(probs: Any, labels: Any, n_bins: int = 15, validate: bool = True) -> float:
    """ECE with equal-mass bins, which put resolution where the confidences are.

    aECE = sum_g (n_g / N) |acc_g - conf_g| over groups of the confidence-sorted samples,
    split as numpy.array_split into min(n_bins, N) groups   (Nixon et al. 2019,
    "Measuring calibration in deep learning", adaptive calibration error).
    Ties in confidence are ordered wrong-before-correct so the value ignores input order.
    """
    n_bins = _check_n_bins(n_bins)
    conf, correct = _conf_correct(*_inputs(probs, labels, validate))
    return _adaptive_ece_core(conf, correct, n_bins)


def calibration_items(probs: Any, labels: Any) -> dict[str, np.ndarray]:
    """Per-item columns of a classifier's predictions, from which ``metrics_from_items``
    computes every table metric: label, pred, confidence, correct, nll, brier."""
    p, y = check_probs_labels(probs, labels)
    conf, correct = _conf_correct(p, y)
    return {
        "label": y.cpu().numpy(),
        "pred": p.argmax(dim=1).cpu().numpy(),
        "confidence": conf.cpu().numpy(),
        "correct": correct.cpu().numpy(),
        "nll": _nll_items(p, y, NLL_EPS).cpu().numpy(),
        "brier": _brier_items(p, y).cpu().numpy(),
    }


def metrics_from_items(items: dict[str, Any], n_bins: int = 15) -> dict[str, float]:
    """All table metrics from per-item columns (confidence, correct, nll, brier)."""
    n_bins = _check_n_bins(n_bins)
    conf = torch.as_tensor(np.asarray(items["confidence"]), dtype=_F64)
    correct = torch.as_tensor(np.asarray(items["correct"]), dtype=_F64)
    sums = _bin_sums(conf, correct, n_bins)[1:]
    groups = _tie_groups(conf, correct)
    return {
        "accuracy": float(correct.mean()),
        "nll": float(torch.as_tensor(np.asarray(items["nll"]), dtype=_F64).mean()),
        "brier": float(torch.as_tensor(np.asarray(items["brier"]), dtype=_F64).mean()),
        "ece": _ece_from_sums(*sums),
        "mce": _mce_from_sums(*sums),
        "adaptive_ece": _adaptive_ece_core(conf, correct, n_bins),
        "auroc": _auroc_core(*groups),
        "aurc": _aurc_core(*groups),
        "eaurc": _eaurc_core(*groups),
    }


def calibration_metrics(probs: Any, labels: Any, n_bins: int = 15) -> dict[str, float]:
    """All table metrics at once, validating the inputs and sorting the confidences once."""
    return metrics_from_items(calibration_items(probs, labels), n_bins)
