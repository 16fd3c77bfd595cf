"""Inputs of the classifier metrics: class probabilities and integer labels, checked once.

The metrics of :mod:`bench.metrics.calibration` and :mod:`bench.metrics.selective` take
``probs`` (N, K) class probabilities (rows sum to 1) and ``labels`` (N,) integer class ids,
as torch tensors or numpy arrays, and compute on the input's device. Probabilities keep
their float dtype (argmax and max are exact in any dtype, and a float64 copy of a large
N x K matrix costs more than the metric); every per-sample statistic and sum is float64.

The prediction is the argmax; ties go to the lowest class index (torch/numpy argmax).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

ROW_SUM_TOL = 1e-3  # |sum_k p_k - 1| allowed per row before the input is rejected

__all__ = ["ROW_SUM_TOL", "check_probs_labels", "confidence_and_correct"]

_F64 = torch.float64


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


def _conf_correct(p: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    conf, pred = p.max(dim=1)  # first maximal index on ties, as argmax
    return conf.to(_F64), (pred == y).to(_F64)


def confidence_and_correct(probs: Any, labels: Any, validate: bool = True) -> tuple[Tensor, Tensor]:
    """Max probability and (argmax == label) per sample, both float64 (N,) tensors."""
    return _conf_correct(*_inputs(probs, labels, validate))
