"""Calibration and selective-prediction metrics for classifiers.

Every public function takes ``probs`` (N, K) class probabilities (rows sum to 1) and
``labels`` (N,) integer class ids, as torch tensors or numpy arrays, computes on the
input's device, and returns python floats as fractions (not percent). Probabilities keep
their float dtype (argmax and max are exact in any dtype, and a float64 copy of a large
N x K matrix costs more than the metric); every per-sample statistic and sum is float64.

Each metric is a thin wrapper: convert (and, unless ``validate=False``, check) the inputs
once with :func:`check_probs_labels`, then call a small private core that works on
``conf`` (max probability) and ``correct`` (argmax == label, as 0/1 float64). Hot loops
such as bootstrap resampling can validate once and pass ``validate=False`` afterwards.

Conventions, pinned by tests:

* The prediction is the argmax; ties go to the lowest class index (torch/numpy argmax).
* Reliability bins are equal-width and half-open ``(lo, hi]``; a confidence of exactly
  ``k/M`` belongs to bin ``k-1``, 0.0 to the first bin and 1.0 to the last. Edges are the
  exact float64 values ``k/M``, so a float64 confidence of e.g. 0.6 == 9/15 lands in bin 8.
  A float32 0.6 is 0.6000000238 in float64 and lands in bin 9: pass float64 if it matters.
* Ties in confidence are accepted together in the risk-coverage curve and get average
  ranks in the AUROC, so neither depends on the order of the samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

ROW_SUM_TOL = 1e-3  # |sum_k p_k - 1| allowed per row before the input is rejected
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


# ---------------------------------------------------------------------------- conversion


def _as_tensor(x: Any, device: torch.device | None = None) -> Tensor:
    """A torch view of ``x`` (no copy for contiguous numpy arrays), optionally moved."""
    t = x if isinstance(x, Tensor) else torch.as_tensor(np.ascontiguousarray(x))
    return t if device is None else t.to(device)


def _float(p: Tensor) -> Tensor:
    """float32/float64 kept as they are; half precision to float32, integers to float64."""
    if p.dtype in (torch.float32, _F64):
        return p
    return p.float() if p.is_floating_point() else p.to(_F64)


def _convert(probs: Any, labels: Any) -> tuple[Tensor, Tensor]:
    """Unchecked conversion: float probs and int64 labels on the probs' device."""
    p = _float(_as_tensor(probs))
    return p, _as_tensor(labels, p.device).long()


def check_probs_labels(probs: Any, labels: Any) -> tuple[Tensor, Tensor]:
    """Convert and check inputs; return float probs (N, K) and int64 labels (N,).

    Raises ValueError naming the problem and the fix, so a caller who passes logits,
    one-hot labels or NaNs learns why instead of getting a silently wrong number.
    """
    p = _as_tensor(probs)
    y = _as_tensor(labels, p.device)
    if p.ndim != 2:
        raise ValueError(
            f"probs must be 2-D (N, K) class probabilities, got shape {tuple(p.shape)}; "
            "for a binary score s of the positive class pass torch.stack([1 - s, s], dim=1)"
        )
    if y.ndim != 1:
        raise ValueError(
            f"labels must be 1-D (N,) integer class ids, got shape {tuple(y.shape)}; "
            "for one-hot labels pass labels.argmax(1), otherwise labels.reshape(-1)"
        )
    n, k = p.shape
    if y.shape[0] != n:
        raise ValueError(
            f"probs has N={n} rows but labels has {y.shape[0]} entries; "
            "pass exactly one label per row of probs"
        )
    if n == 0 or k == 0:
        raise ValueError(f"probs is empty (shape {(n, k)}); need at least one sample and class")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise ValueError(
            f"labels must be integer class ids, got dtype {y.dtype}; "
            "pass labels.long() (numpy: labels.astype(int))"
        )
    if p.is_complex():
        raise ValueError(f"probs must be real, got dtype {p.dtype}; pass probs.real if intended")
    p = _float(p)
    y = y.long()
    row_sum = p.sum(dim=1)  # in p's dtype: accurate to far below ROW_SUM_TOL, and fast
    if not bool(torch.isfinite(row_sum).all()):  # cheaper than isfinite(p) on N*K values
        bad = (~torch.isfinite(p)).any(dim=1).nonzero()
        if len(bad):  # else finite entries overflowed the sum: the row-sum check reports it
            raise ValueError(
                f"probs contains NaN or inf (first in row {int(bad[0, 0])}); the model output "
                "overflowed or diverged: fix it upstream, or drop those rows, before scoring"
            )
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise ValueError(
            f"labels must lie in [0, {k}) for K={k} columns of probs, found values in "
            f"[{lo}, {hi}]; map labels to 0..K-1 and give probs one column per class"
        )
    p_min = float(p.min())
    if p_min < 0:
        raise ValueError(
            f"probs has negative entries (min {p_min:.4g}); these look like logits: "
            "pass softmax(logits), not logits"
        )
    dev = (row_sum - 1.0).abs()
    row = int(dev.argmax())
    if not float(dev[row]) <= ROW_SUM_TOL:
        raise ValueError(
            f"rows of probs must sum to 1 within {ROW_SUM_TOL:g}, but row {row} sums to "
            f"{float(row_sum[row]):.6g}; pass softmax(logits), not logits"
        )
    return p, y


def _inputs(probs: Any, labels: Any, validate: bool) -> tuple[Tensor, Tensor]:
    return check_probs_labels(probs, labels) if validate else _convert(probs, labels)


def _check_n_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


# ------------------------------------------------------------------------------- cores


def _conf_correct(p: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    conf, pred = p.max(dim=1)  # first maximal index on ties, as argmax
    return conf.to(_F64), (pred == y).to(_F64)


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


def confidence_and_correct(probs: Any, labels: Any, validate: bool = True) -> tuple[Tensor, Tensor]:
    """Max probability and (argmax == label) per sample, both float64 (N,) tensors."""
    return _conf_correct(*_inputs(probs, labels, validate))


def accuracy(probs: Any, labels: Any, validate: bool = True) -> float:
    """Top-1 accuracy: fraction of samples whose argmax is the label."""
    _, correct = confidence_and_correct(probs, labels, validate)
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
    conf, correct = confidence_and_correct(probs, labels, validate)
    edges, count, conf_sum, correct_sum = _bin_sums(conf, correct, n_bins)
    return ReliabilityBins(edges.tolist(), count.tolist(), conf_sum.tolist(), correct_sum.tolist())


def ece(probs: Any, labels: Any, n_bins: int = 15, validate: bool = True) -> float:
    """Expected calibration error over equal-width confidence bins.

    ECE = sum_b (n_b / N) |acc_b - conf_b|   (Guo et al. 2017, eq. 3)
    """
    conf, correct = confidence_and_correct(probs, labels, validate)
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
    conf, correct = confidence_and_correct(probs, labels, validate)
    return _mce_from_sums(*_bin_sums(conf, correct, n_bins)[1:])


def adaptive_ece(probs: Any, labels: Any, n_bins: int = 15, validate: bool = True) -> float:
    """ECE with equal-mass bins, which put resolution where the confidences are.

    aECE = sum_g (n_g / N) |acc_g - conf_g| over groups of the confidence-sorted samples,
    split as numpy.array_split into min(n_bins, N) groups   (Nixon et al. 2019,
    "Measuring calibration in deep learning", adaptive calibration error).
    Ties in confidence are ordered wrong-before-correct so the value ignores input order.
    """
    n_bins = _check_n_bins(n_bins)
    conf, correct = confidence_and_correct(probs, labels, validate)
    return _adaptive_ece_core(conf, correct, n_bins)


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
