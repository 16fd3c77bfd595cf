"""Item forms: with bootstrap counts as weights they give the metric of the duplicated
items, checked against the project's metric functions and against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from bench.metrics.calibration import metrics_from_items
from bench.metrics.weighted import MacroF1, Mean, Ratio, Selective, classifier_forms, column


def _items(n=300, seed=0):
    rng = np.random.default_rng(seed)
    conf = np.round(rng.uniform(0.3, 1.0, n), 2)  # rounded: many ties
    correct = (rng.uniform(size=n) < conf).astype(float)
    return {
        "confidence": conf,
        "correct": correct,
        "nll": rng.exponential(size=n),
        "brier": rng.uniform(size=n),
        "label": rng.integers(0, 5, n),
        "pred": rng.integers(0, 5, n),
    }


def _draw(n, seed):
    idx = np.random.default_rng(seed).integers(0, n, n)
    return idx, np.bincount(idx, minlength=n)[None, :].astype(float)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classifier_forms_equal_the_metrics_of_the_resampled_items(seed):
    items = _items(seed=seed)
    idx, weights = _draw(300, seed + 10)
    want = metrics_from_items({k: v[idx] for k, v in items.items()})
    for name, form in classifier_forms("test", 15).items():
        assert form(items, weights)[0] == pytest.approx(want[name], rel=1e-12, abs=1e-15), name


def test_weighted_auroc_agrees_with_scikit_learn_sample_weights():
    items = _items()
    _, weights = _draw(300, 5)
    ours = Selective("test", "confidence", "correct")(items, weights)[0]
    peer = roc_auc_score(items["correct"], items["confidence"], sample_weight=weights[0])
    assert ours == pytest.approx(peer, rel=1e-12)


def test_macro_f1_agrees_with_scikit_learn_on_resampled_items():
    items = _items()
    idx, weights = _draw(300, 7)
    ours = MacroF1("test", "label", "pred")(items, weights)[0]
    peer = f1_score(items["label"][idx], items["pred"][idx], average="macro")
    assert ours == pytest.approx(peer, rel=1e-12)


def test_ratio_drops_empty_references_and_mean_drops_nan():
    cols = {"edits": np.array([1.0, 2.0, 3.0]), "len": np.array([4.0, 0.0, 6.0])}
    weights = np.array([[1.0, 1.0, 1.0], [2.0, 1.0, 0.0]])
    np.testing.assert_allclose(Ratio("t", "edits", "len", True)(cols, weights), [0.4, 0.25])
    np.testing.assert_allclose(Ratio("t", "edits", "len")(cols, weights), [0.6, 0.5])
    mean = Mean("t", column("v"))({"v": np.array([1.0, np.nan, 3.0])}, weights)
    np.testing.assert_allclose(mean, [2.0, 1.0])
