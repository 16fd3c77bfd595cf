"""Retrieval metrics (bench.metrics.retrieval) on hand-made cases."""

import numpy as np
import pytest

from bench.metrics import METRICS
from bench.metrics.retrieval import (
    average_precisions_at_r,
    eer,
    first_correct_ranks,
    map_at_r,
    nmi,
    recall_at_1,
    retrieval_items,
    retrieval_metrics,
    retrieval_metrics_from_items,
    trials,
)

# points on the unit circle at these angles (degrees), with labels
ANGLES = np.array([0.0, 10.0, 30.0, 100.0, 110.0, 200.0])
LABELS = np.array([0, 0, 1, 1, 1, 0])


def circle(angles):
    rad = np.deg2rad(angles)
    return np.stack([np.cos(rad), np.sin(rad)], 1)


def test_recall_at_1_by_hand():
    # nearest: 0->10(0 ok), 10->0(ok), 30->10(wrong), 100->110(ok), 110->100(ok),
    # 200->110 (90° away, vs 160° to 0 and 30: 170°): wrong
    assert recall_at_1(circle(ANGLES), LABELS) == pytest.approx(4 / 6)


def test_map_at_r_by_hand():
    # query 0°: R = 2 (10°, 200°); order 10(+), 30(-), 100, 110, 200(+): AP = (1/1)/2 = 0.5
    # query 10°: R = 2; order 0(+), 30(-): 0.5
    # query 30°: R = 2 (100, 110); order 10(-), 0(-): 0
    # query 100°: R = 2; order 110(+), 30(+): (1 + 1)/2 = 1
    # query 110°: R = 2; order 100(+), 30(+) (80° vs 90° to 200°): 1
    # query 200°: R = 2 (0, 10); order 110(-), 100(-): 0
    assert map_at_r(circle(ANGLES), LABELS) == pytest.approx((0.5 + 0.5 + 0 + 1 + 1 + 0) / 6)


def test_map_at_r_is_one_for_perfect_clusters_and_recall_too():
    x = circle(np.array([0, 1, 2, 90, 91, 92, 180, 181]))
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    assert map_at_r(x, y) == 1.0 and recall_at_1(x, y) == 1.0
    assert nmi(x, y) == pytest.approx(1.0)


def test_map_at_r_counts_precision_only_within_r():
    # query 0: R = 1, its positive is 2nd -> P(1)·rel(1) = 0 -> AP 0 (precision@2 not counted)
    x = circle(np.array([0, 50, 5]))
    y = np.array([0, 0, 1])
    assert map_at_r(x, y) == pytest.approx((0 + 0) / 2)


def test_eer_on_hand_made_scores():
    # 4 targets, 4 non-targets; one of each on the wrong side: EER = 1/4
    scores = [0.9, 0.8, 0.7, 0.2, 0.75, 0.3, 0.1, 0.0]
    targets = [1, 1, 1, 1, 0, 0, 0, 0]
    assert eer(scores, targets) == pytest.approx(0.25)
    assert eer([0.9, 0.8, 0.1, 0.0], [1, 1, 0, 0]) == 0.0  # perfectly separated
    assert eer([0.0, 0.1, 0.8, 0.9], [1, 1, 0, 0]) == pytest.approx(1.0)  # perfectly wrong


def test_eer_interpolates_between_roc_points():
    # targets 0.9, 0.6, 0.3; non-targets 0.7, 0.2. ROC points (FAR, FRR): (0, 2/3),
    # (1/2, 2/3) at 0.7, (1/2, 1/3) at 0.6: FRR − FAR goes 1/6 -> −1/6, crossing at FAR 1/2
    assert eer([0.9, 0.6, 0.3, 0.7, 0.2], [1, 1, 1, 0, 0]) == pytest.approx(0.5)
    # targets 0.9, 0.5; non-targets 0.6, 0.1, 0.05: points (0, 1/2), (1/3, 1/2), (1/3, 0):
    # FRR − FAR goes 1/6 -> −1/3 on the vertical segment at FAR 1/3
    assert eer([0.9, 0.5, 0.6, 0.1, 0.05], [1, 1, 0, 0, 0]) == pytest.approx(1 / 3)


def test_eer_needs_both_kinds_of_trial():
    with pytest.raises(ValueError, match="both"):
        eer([0.1, 0.2], [1, 1])


def test_trials_are_all_unordered_pairs():
    scores, targets = trials(circle(ANGLES), LABELS)
    assert len(scores) == 15 and targets.sum() == 6  # C(3,2) + C(3,2)


def test_every_retrieval_metric_has_a_spec():
    m = retrieval_metrics(circle(ANGLES), LABELS)
    assert set(m) <= set(METRICS)
    assert METRICS["eer"].higher_is_better is False and METRICS["recall_at_1"].higher_is_better


def test_per_item_results_by_hand_and_the_aggregates_they_give():
    x = circle(ANGLES)
    # 30°: 10(-), 0(-), 100(+) -> 3; 200°: 110(-), 100(-), 0(+) -> 3; the others rank 1
    assert first_correct_ranks(x, LABELS).tolist() == [1, 1, 3, 1, 1, 3]
    assert average_precisions_at_r(x, LABELS) == pytest.approx([0.5, 0.5, 0, 1, 1, 0])
    assert first_correct_ranks(x[:4], [0, 0, 1, 2]).tolist() == [1, 1, 0, 0]  # 0: alone
    assert np.isnan(average_precisions_at_r(x[:4], [0, 0, 1, 2])[2:]).all()
    items = retrieval_items(x, LABELS, [f"u{i}" for i in range(6)])
    assert set(items) == {"test"} and items["test"]["embedding"].shape == (6, 2)
    assert len(set(items["test"]["cluster"])) == 2
    assert retrieval_metrics_from_items(items) == retrieval_metrics(x, LABELS)
