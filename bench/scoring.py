"""Fit a post-hoc calibrator on one split and score it on another, per item.

Shared by the tasks that calibrate (``calibration``, ``calibrate_logits``); it sits below
them so that no task imports another.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench import harness, registry
from bench.metrics.calibration import (
    calibration_items,
    metrics_from_items,
    reliability_bins,
    risk_at_coverage_grid,
)


def score_calibrator(
    name: str,
    valid: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    test_ids: np.ndarray,
    n_bins: int = 15,
) -> tuple[dict[str, float], dict[str, list], dict[str, float], dict[str, np.ndarray]]:
    """Fit calibrator ``name`` on ``valid`` (logits, labels), score it on ``test``.

    Returns (metrics, curves, timing, per-item columns of the test split)."""
    calibrator = registry.build("calibrator", name)
    t0 = time.perf_counter()
    calibrator.fit(torch.from_numpy(valid[0]), torch.from_numpy(valid[1]))
    fit_ms = (time.perf_counter() - t0) * 1e3
    logits = torch.from_numpy(test[0])
    apply = harness.time_fn(lambda: calibrator(logits), "cpu", warmup=1, repeats=5)
    probs = calibrator(logits)
    labels = torch.from_numpy(test[1])
    items = {"item_id": np.asarray(test_ids).astype(str), **calibration_items(probs, labels)}
    metrics = metrics_from_items(items, n_bins=n_bins)
    metrics.update({k: float(v) for k, v in calibrator.params().items()})
    bins = reliability_bins(probs, labels, n_bins=n_bins)
    coverage, risk = risk_at_coverage_grid(probs, labels)
    curves = {
        "reliability_count": bins.count,
        "reliability_conf_sum": bins.conf_sum,
        "reliability_correct_sum": bins.correct_sum,
        "coverage": coverage,
        "risk": risk,
    }
    timing = {
        "calibrator_fit_ms": fit_ms,
        "calibrator_samples_per_s": len(logits) / (apply.median_ms / 1e3),
    }
    return metrics, curves, timing, items
