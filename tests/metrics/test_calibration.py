"""Tests for bench.metrics.calibration: hand-computed cases, sklearn/torchmetrics references,
bin-edge conventions, tie handling and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from bench.metrics import calibration as cal
from bench.metrics.calibration import (
    ReliabilityBins,
    accuracy,
    adaptive_ece,
    aurc,
    brier,
    calibration_metrics,
    check_probs_labels,
    confidence_and_correct,
    eaurc,
    ece,
    mce,
    nll,
    reliability_bins,
    risk_at_coverage_grid,
    risk_coverage_curve,
    selective_auroc,
)

# ------------------------------------------------------------------------------ helpers


def binary(conf, correct) -> tuple[np.ndarray, np.ndarray]:
    """K=2 probs whose max is `conf` (>= 0.5, predicted class 0) and labels giving `correct`.

    With conf == 0.5 the row is [0.5, 0.5] and argmax takes class 0, so the same rule holds.
    """
    c = np.asarray(conf, dtype=np.float64)
    probs = np.stack([c, 1.0 - c], axis=1)
    labels = np.where(np.asarray(correct, dtype=bool), 0, 1)
    return probs, labels


def random_probs(n: int, k: int, seed: int, temp: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of random logits, labels agreeing with the argmax ~60% of the time."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * temp
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = np.where(rng.random(n) < 0.6, probs.argmax(1), rng.integers(0, k, size=n))
    return probs, labels


def top_k_aurc(conf: np.ndarray, correct: np.ndarray) -> float:
    """AURC without ties: mean over k of (errors among the k most confident) / k."""
    order = np.argsort(-conf, kind="stable")
    errors = np.cumsum(1.0 - correct[order])
    return float(np.mean(errors / np.arange(1, len(conf) + 1)))


# -------------------------------------------------------------------- basic metrics


def test_confidence_and_correct_hand_case_and_argmax_tie():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.4, 0.4, 0.2]])
    labels = np.array([0, 1, 1])  # argmax 0, 2, 0 (tie -> first index) -> correct 1, 0, 0
    conf, correct = confidence_and_correct(probs, labels)
    assert conf.dtype == torch.float64 and correct.dtype == torch.float64
    assert conf.tolist() == [0.7, 0.6, 0.4]
    assert correct.tolist() == [1.0, 0.0, 0.0]


def test_accuracy_hand_case_numpy_and_torch_agree():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.4, 0.4, 0.2], [0.2, 0.5, 0.3]])
    labels = np.array([0, 2, 1, 1])  # correct: yes, yes, no (tie -> 0), yes -> 3/4
    assert accuracy(probs, labels) == 0.75
    assert accuracy(torch.tensor(probs, dtype=torch.float32), torch.tensor(labels)) == 0.75


def test_nll_hand_case_and_sklearn():
    probs = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]])
    labels = np.array([0, 1])
    # -(ln 0.5 + ln 0.8) / 2 = (0.693147 + 0.223144) / 2 = 0.458145
    assert nll(probs, labels) == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2, abs=1e-12)
    p, y = random_probs(500, 5, seed=1)
    assert nll(p, y) == pytest.approx(log_loss(y, p, labels=range(5)), rel=1e-9)


def test_nll_clamps_zero_probability_at_eps():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    labels = np.array([1, 0])
    # (-ln 1e-12 - ln 0.5) / 2 = (27.631021 + 0.693147) / 2
    assert nll(probs, labels) == pytest.approx((-math.log(1e-12) - math.log(0.5)) / 2)
    assert nll(probs, labels, eps=1e-6) == pytest.approx((-math.log(1e-6) - math.log(0.5)) / 2)


def test_brier_hand_case():
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]])
    labels = np.array([0, 1])
    # row 0: 0.3^2 + 0.2^2 + 0.1^2 = 0.14 ; row 1: 0.2^2 + 0.8^2 + 0.6^2 = 1.04 -> mean 0.59
    assert brier(probs, labels) == pytest.approx(0.59, abs=1e-12)
    # perfectly confident and right -> 0, confidently wrong -> 2 (the range is 0..2)
    assert brier(np.eye(3), np.arange(3)) == 0.0
    assert brier(np.eye(3), np.array([1, 2, 0])) == pytest.approx(2.0)


def test_brier_matches_sklearn_multiclass_unscaled_and_binary_halved():
    p, y = random_probs(400, 4, seed=2)
    # sklearn >= 1.7 supports (N, K) probs; scale_by_half=False keeps the 0..2 multiclass range
    ref = brier_score_loss(y, p, labels=range(4), scale_by_half=False)
    assert brier(p, y) == pytest.approx(ref, rel=1e-9)
    # binary: sklearn's default scores the positive-class column and halves (0..1 range)
    pb, yb = random_probs(300, 2, seed=3)
    assert brier(pb, yb) == pytest.approx(2 * brier_score_loss(yb, pb[:, 1]), rel=1e-9)


# ---------------------------------------------------------------- reliability bins


def test_reliability_bin_edges_are_exact_and_half_open():
    # conf exactly k/15 must land in bin k-1 (upper edge), for every k that K=2 can reach
    ks = np.arange(8, 16)
    conf = ks / 15.0
    probs, labels = binary(conf, np.ones(len(ks)))
    bins = reliability_bins(probs, labels, n_bins=15)
    assert bins.edges == [k / 15 for k in range(16)]
    expected = np.zeros(15)
    expected[ks - 1] = 1
    assert bins.count == expected.tolist()
    # the next float64 above k/15 goes to bin k (except 1.0, which is the last edge)
    above = np.nextafter(conf[:-1], 2.0)
    bins_above = reliability_bins(*binary(above, np.ones(len(above))), n_bins=15)
    expected = np.zeros(15)
    expected[ks[:-1]] = 1
    assert bins_above.count == expected.tolist()


def test_reliability_bin_literal_values_and_extremes():
    # 0.6 == 9/15 in float64 -> bin 8 ; 1.0 -> last bin 14 ; 0.5 (in (7/15, 8/15]) -> bin 7
    probs, labels = binary([0.6, 1.0, 0.5], [1, 1, 0])
    bins = reliability_bins(probs, labels, n_bins=15)
    nonzero = [i for i, c in enumerate(bins.count) if c]
    assert nonzero == [7, 8, 14]
    # K=15 uniform rows: conf 1/15 is bin 0's upper edge -> bin 0
    assert reliability_bins(np.full((2, 15), 1 / 15), [0, 3]).count[0] == 2.0
    # conf exactly 0.0 is only reachable unvalidated; it must go to the first bin
    zero = reliability_bins(np.zeros((1, 3)), np.array([0]), n_bins=15, validate=False)
    assert zero.count[0] == 1.0 and sum(zero.count) == 1.0


def test_reliability_bins_sums_and_per_bin_helpers():
    # n_bins=5, edges 0, .2, .4, .6, .8, 1: 0.95 (ok), 0.85 (wrong) -> bin 4 ; 0.65 (ok) ->
    # bin 3 ; 0.6 (ok, upper edge) -> bin 2 ; 0.55 (wrong) -> bin 2 ; bins 0, 1 empty
    probs, labels = binary([0.95, 0.85, 0.65, 0.6, 0.55], [1, 0, 1, 1, 0])
    bins = reliability_bins(probs, labels, n_bins=5)
    assert isinstance(bins, ReliabilityBins) and bins.n_bins == 5
    assert bins.count == [0.0, 0.0, 2.0, 1.0, 2.0]
    assert bins.conf_sum == pytest.approx([0.0, 0.0, 1.15, 0.65, 1.8])
    assert bins.correct_sum == [0.0, 0.0, 1.0, 1.0, 1.0]
    mean_conf, acc = bins.mean_conf(), bins.accuracy()
    assert math.isnan(mean_conf[0]) and math.isnan(acc[1])
    assert mean_conf[2:] == pytest.approx([0.575, 0.65, 0.9])
    assert acc[2:] == [0.5, 1.0, 0.5]
    assert all(type(v) is float for v in bins.edges + bins.count + bins.conf_sum)


# ------------------------------------------------------------------------ ECE / MCE


def test_ece_mce_hand_case():
    # n_bins=5: bin (.8,1]: 0.95 ok, 0.85 wrong -> acc .5, conf .9, gap .4, weight 2/4
    #           bin (.6,.8]: 0.65 ok             -> gap .35, weight 1/4
    #           bin (.4,.6]: 0.55 wrong          -> gap .55, weight 1/4
    # ECE = .2 + .0875 + .1375 = .425 ; MCE = .55
    probs, labels = binary([0.95, 0.85, 0.65, 0.55], [1, 0, 1, 0])
    assert ece(probs, labels, n_bins=5) == pytest.approx(0.425, abs=1e-12)
    assert mce(probs, labels, n_bins=5) == pytest.approx(0.55, abs=1e-12)


def test_mce_ignores_empty_bins_and_edge_membership_matters():
    # 0.6 is bin (.4,.6]'s upper edge: alone in it with acc 1 -> gap .4 ; with [.6, .8) bins it
    # would share a bin with 0.65 (wrong). Single sample: ECE == MCE == |1 - 0.6|.
    probs, labels = binary([0.6], [1])
    assert ece(probs, labels, n_bins=5) == pytest.approx(0.4)
    assert mce(probs, labels, n_bins=5) == pytest.approx(0.4)
    probs, labels = binary([0.6, 0.65], [1, 0])  # two bins: gaps .4 and .65, weights 1/2
    assert ece(probs, labels, n_bins=5) == pytest.approx(0.525)
    assert mce(probs, labels, n_bins=5) == pytest.approx(0.65)


def test_ece_mce_match_torchmetrics_on_continuous_data():
    tm = pytest.importorskip("torchmetrics", reason="torchmetrics is the ECE/MCE reference")
    from torchmetrics.functional.classification import multiclass_calibration_error

    del tm
    for seed, k in [(4, 5), (5, 10)]:
        p, y = random_probs(3000, k, seed=seed)
        # torchmetrics bins are [lo, hi) - identical to ours unless a conf sits on an edge
        conf = p.max(1)
        # (and torchmetrics rounds conf to float32, so keep a margin of 1e-6)
        assert np.abs(conf * 15 - np.round(conf * 15)).min() > 1e-6
        pt, yt = torch.tensor(p, dtype=torch.float32), torch.tensor(y)
        for norm, fn in [("l1", ece), ("max", mce)]:
            ref = multiclass_calibration_error(pt, yt, num_classes=k, n_bins=15, norm=norm)
            assert fn(p, y, n_bins=15) == pytest.approx(float(ref), abs=1e-5), (seed, norm)


def test_ece_near_zero_for_perfect_calibration_and_large_when_overconfident():
    rng = np.random.default_rng(6)
    n = 200_000
    conf = rng.uniform(0.5, 1.0, size=n)
    correct = rng.random(n) < conf  # each sample is right with probability = its confidence
    probs, labels = binary(conf, correct)
    assert ece(probs, labels) < 0.01
    assert adaptive_ece(probs, labels) < 0.01
    # same predictions, but truly right only with probability 0.5 + (conf - 0.5) / 2
    over = rng.random(n) < 0.5 + (conf - 0.5) / 2
    assert ece(*binary(conf, over)) == pytest.approx(0.125, abs=0.01)  # E[conf - acc] = .125


# ----------------------------------------------------------------------- adaptive ECE


def test_adaptive_ece_hand_case():
    # N=5, 2 bins -> sizes 3, 2 (numpy.array_split). Sorted confidences:
    # [0.5 wrong, 0.6 ok, 0.7 ok] -> acc 2/3, conf 0.6 -> gap 1/15, weight 3/5 -> 0.04
    # [0.8 wrong, 0.9 ok]         -> acc 1/2, conf .85 -> gap .35, weight 2/5 -> 0.14
    # aECE = 0.18
    probs, labels = binary([0.9, 0.5, 0.8, 0.6, 0.7], [1, 0, 0, 1, 1])
    assert adaptive_ece(probs, labels, n_bins=2) == pytest.approx(0.18, abs=1e-12)


def test_adaptive_ece_group_sizes_follow_array_split():
    # N=7, 3 bins -> sizes 3, 2, 2 (remainder to the first groups); gaps of both signs, so
    # sizes 3, 3, 1 (-> 1.95/7) or 2, 2, 3 (-> 1.55/7) would give different values:
    # [.5 w, .55 w, .6 w] acc 0, conf .55 -> .55 * 3 = 1.65
    # [.65 ok, .7 w]      acc .5, conf .675 -> .175 * 2 = .35
    # [.75 ok, .8 ok]     acc 1, conf .775 -> .225 * 2 = .45   -> aECE = 2.45 / 7 = 0.35
    probs, labels = binary([0.8, 0.5, 0.7, 0.55, 0.75, 0.6, 0.65], [1, 0, 0, 0, 1, 0, 1])
    assert adaptive_ece(probs, labels, n_bins=3) == pytest.approx(0.35, abs=1e-12)


def test_adaptive_ece_fewer_samples_than_bins_and_array_split_reference():
    # N=3 < 15 bins -> one sample per bin -> mean |correct - conf| = (.1 + .8 + .7) / 3
    probs, labels = binary([0.9, 0.8, 0.7], [1, 0, 0])
    assert adaptive_ece(probs, labels) == pytest.approx(1.6 / 3, abs=1e-12)
    p, y = random_probs(1003, 6, seed=7)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    order = np.argsort(conf)
    ref = sum(
        len(g) / len(conf) * abs(correct[g].mean() - conf[g].mean())
        for g in np.array_split(order, 15)
    )
    assert adaptive_ece(p, y) == pytest.approx(ref, abs=1e-12)


def test_adaptive_ece_independent_of_sample_order_with_ties():
    # ties straddle the group boundary; ties are resolved wrong-before-correct, so
    # sorted: [.7 w, .7 w, .7 ok | .7 ok, .9 ok] -> gaps |1/3 - .7| * 3/5 + |1 - .8| * 2/5
    conf, correct = [0.7, 0.7, 0.7, 0.7, 0.9], [1, 0, 1, 0, 1]
    expected = abs(1 / 3 - 0.7) * 3 / 5 + abs(1 - 0.8) * 2 / 5
    perm = [3, 0, 4, 2, 1]
    for c, k in [(conf, correct), ([conf[i] for i in perm], [correct[i] for i in perm])]:
        assert adaptive_ece(*binary(c, k), n_bins=2) == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------- selective AUROC


def test_selective_auroc_hand_case_with_tie():
    # correct at .9, .7 ; wrong at .8, .6 -> pairs (.9>.8) (.9>.6) (.7<.8) (.7>.6) -> 3/4
    assert selective_auroc(*binary([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])) == 0.75
    # a tied correct/wrong pair counts 1/2: correct .9, .7 ; wrong .7 -> (1 + .5) / 2
    assert selective_auroc(*binary([0.9, 0.7, 0.7], [1, 1, 0])) == 0.75


def test_selective_auroc_matches_sklearn_including_ties():
    p, y = random_probs(2000, 4, seed=8)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(int)
    assert selective_auroc(p, y) == pytest.approx(roc_auc_score(correct, conf), abs=1e-12)
    # heavy ties: confidences rounded to 1 decimal, as K=2 rows with the same correctness
    c = np.round(conf, 1).clip(0.5, 1.0)
    pb, yb = binary(c, correct)
    assert len(np.unique(c)) <= 6
    assert selective_auroc(pb, yb) == pytest.approx(roc_auc_score(correct, c), abs=1e-12)


def test_selective_auroc_nan_when_one_class():
    assert math.isnan(selective_auroc(*binary([0.9, 0.6, 0.7], [1, 1, 1])))
    assert math.isnan(selective_auroc(*binary([0.9, 0.6, 0.7], [0, 0, 0])))


# ---------------------------------------------------------------- risk-coverage / AURC


def test_aurc_equals_top_k_formula_without_ties():
    p, y = random_probs(1500, 5, seed=9)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    assert len(np.unique(conf)) == len(conf)
    assert aurc(p, y) == pytest.approx(top_k_aurc(conf, correct), abs=1e-12)
    coverage, risk = risk_coverage_curve(p, y)
    assert coverage.dtype == torch.float64 and len(coverage) == 1500
    assert coverage[-1] == 1.0 and risk[-1] == pytest.approx(1 - correct.mean())


def test_risk_coverage_tie_case():
    # conf .9 ok ; .8 wrong, .8 ok (tied) ; .6 wrong
    # thresholds .9 -> cov 1/4 risk 0 ; .8 -> cov 3/4 risk 1/3 ; .6 -> cov 1 risk 1/2
    # AURC = 0 * 1/4 + 1/3 * 2/4 + 1/2 * 1/4 = 7/24 (per-sample orderings would give 5/24
    # or 8/24 depending on which tied sample comes first)
    for conf, correct in [
        ([0.9, 0.8, 0.8, 0.6], [1, 0, 1, 0]),
        ([0.6, 0.8, 0.9, 0.8], [0, 1, 1, 0]),
    ]:
        probs, labels = binary(conf, correct)
        coverage, risk = risk_coverage_curve(probs, labels)
        assert coverage.tolist() == [0.25, 0.75, 1.0]
        assert risk.tolist() == pytest.approx([0.0, 1 / 3, 0.5])
        assert aurc(probs, labels) == pytest.approx(7 / 24, abs=1e-12)
        # oracle with 2 errors of 4: (0 + 0 + 1/3 + 2/4) / 4 = 5/24 -> E-AURC = 2/24
        assert eaurc(probs, labels) == pytest.approx(2 / 24, abs=1e-12)


def test_eaurc_zero_for_oracle_ranking_and_positive_otherwise():
    rng = np.random.default_rng(10)
    correct = rng.random(500) < 0.7
    # all correct samples more confident than all wrong ones
    conf = np.where(correct, rng.uniform(0.8, 1.0, 500), rng.uniform(0.5, 0.79, 500))
    probs, labels = binary(conf, correct)
    assert eaurc(probs, labels) == pytest.approx(0.0, abs=1e-12)
    assert aurc(probs, labels) > 0.0  # the oracle still has risk at full coverage
    reversed_probs, _ = binary(1.5 - conf, correct)  # worst ranking
    assert eaurc(reversed_probs, labels) > 0.2
    # all correct or all wrong: nothing to rank, AURC is 0 or 1 and E-AURC 0
    assert aurc(*binary([0.9, 0.7], [1, 1])) == 0.0 and eaurc(*binary([0.9, 0.7], [1, 1])) == 0
    assert aurc(*binary([0.9, 0.7], [0, 0])) == pytest.approx(1.0)
    assert eaurc(*binary([0.9, 0.7], [0, 0])) == pytest.approx(0.0, abs=1e-12)


def test_risk_at_coverage_grid_step_interpolation():
    probs, labels = binary([0.9, 0.8, 0.8, 0.6], [1, 0, 1, 0])
    # grid 1/4, 2/4, 3/4, 1 ; smallest set covering 2/4 is the .8 threshold (3/4) -> 1/3
    coverage, risk = risk_at_coverage_grid(probs, labels, grid_points=5)
    assert coverage == [0.25, 0.5, 0.75, 1.0]
    assert risk == pytest.approx([0.0, 1 / 3, 1 / 3, 0.5])
    p, y = random_probs(997, 3, seed=11)
    coverage, risk = risk_at_coverage_grid(p, y)
    assert len(coverage) == len(risk) == 100 and coverage[0] == 0.01 and coverage[-1] == 1.0
    assert type(risk[0]) is float
    # against a direct per-sample computation (no ties): risk of the first ceil(c * N) samples
    conf, correct = p.max(1), (p.argmax(1) == y)
    errors = np.cumsum(~correct[np.argsort(-conf)])
    for c, r in zip(coverage, risk, strict=True):
        m = math.ceil(round(c * 997, 9))
        assert r == pytest.approx(errors[m - 1] / m, abs=1e-12)


# ------------------------------------------------------------------ bundle and inputs


def test_calibration_metrics_keys_and_agreement():
    p, y = random_probs(800, 5, seed=12)
    out = calibration_metrics(p, y, n_bins=10)
    assert list(out) == "accuracy nll brier ece mce adaptive_ece auroc aurc eaurc".split()
    assert all(type(v) is float for v in out.values())
    singles = {
        "accuracy": accuracy(p, y),
        "nll": nll(p, y),
        "brier": brier(p, y),
        "ece": ece(p, y, n_bins=10),
        "mce": mce(p, y, n_bins=10),
        "adaptive_ece": adaptive_ece(p, y, n_bins=10),
        "auroc": selective_auroc(p, y),
        "aurc": aurc(p, y),
        "eaurc": eaurc(p, y),
    }
    assert out == pytest.approx(singles, abs=1e-12)
    # float32 torch input gives the same numbers up to float32 rounding of the probs
    out32 = calibration_metrics(torch.tensor(p, dtype=torch.float32), torch.tensor(y), 10)
    assert out32 == pytest.approx(out, abs=1e-5)


def test_check_probs_labels_converts():
    """float32 probs stay float32 (no N x K float64 copy); integers and halves are widened;
    the per-sample statistics are float64 whatever the input dtype."""
    p, y = check_probs_labels(np.array([[0.25, 0.75]], dtype=np.float32), np.array([1], np.int32))
    assert p.dtype == torch.float32 and y.dtype == torch.int64
    assert p.tolist() == [[0.25, 0.75]] and y.tolist() == [1]
    assert check_probs_labels(np.array([[0, 1]]), np.array([1]))[0].dtype == torch.float64
    half = torch.tensor([[0.25, 0.75]], dtype=torch.float16)
    assert check_probs_labels(half, torch.tensor([1]))[0].dtype == torch.float32
    conf, correct = confidence_and_correct(half, torch.tensor([1]))
    assert conf.dtype == correct.dtype == torch.float64


GOOD_P = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
GOOD_Y = np.array([1, 0])


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        (np.array([[0.2, np.nan, 0.8], [0.6, 0.3, 0.1]]), GOOD_Y, r"NaN or inf .*row 0"),
        (np.array([[0.2, 0.5, 0.3], [np.inf, 0.0, 0.0]]), GOOD_Y, r"NaN or inf .*row 1"),
        (np.array([[2.0, 1.0, 0.5], [0.1, 0.2, 3.0]]), GOOD_Y, r"softmax\(logits\), not logits"),
        (np.array([[-1.0, 1.5, 0.5], [0.6, 0.3, 0.1]]), GOOD_Y, r"negative.*softmax\(logits\)"),
        (GOOD_P, np.array([1, 3]), r"labels must lie in \[0, 3\).*\[1, 3\]"),
        (GOOD_P, np.array([-1, 0]), r"labels must lie in \[0, 3\)"),
        (GOOD_P, np.array([1, 0, 2]), r"N=2 rows but labels has 3"),
        (GOOD_P[0], GOOD_Y, r"probs must be 2-D"),
        (GOOD_P, GOOD_Y[:, None], r"labels must be 1-D"),
        (GOOD_P, GOOD_Y.astype(float), r"integer class ids.*labels\.long\(\)"),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), r"empty"),
    ],
)
def test_validation_errors(probs, labels, match):
    with pytest.raises(ValueError, match=match):
        check_probs_labels(probs, labels)


@pytest.mark.parametrize(
    "fn",
    [
        accuracy,
        nll,
        brier,
        reliability_bins,
        ece,
        mce,
        adaptive_ece,
        selective_auroc,
        risk_coverage_curve,
        aurc,
        eaurc,
        risk_at_coverage_grid,
        calibration_metrics,
        confidence_and_correct,
    ],
)
def test_every_function_rejects_logits(fn):
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    with pytest.raises(ValueError, match=r"softmax\(logits\)"):
        fn(logits, GOOD_Y)


def test_validate_false_skips_the_check(monkeypatch):
    def boom(*args):
        raise AssertionError("check_probs_labels called with validate=False")

    monkeypatch.setattr(cal, "check_probs_labels", boom)
    p, y = random_probs(50, 3, seed=13)
    for fn in [accuracy, nll, brier, ece, mce, adaptive_ece, selective_auroc, aurc, eaurc]:
        assert isinstance(fn(p, y, validate=False), float)
    reliability_bins(p, y, validate=False)
    risk_at_coverage_grid(p, y, validate=False)
    with pytest.raises(AssertionError):
        accuracy(p, y)


def test_bad_bin_and_grid_arguments():
    with pytest.raises(ValueError, match="n_bins"):
        ece(GOOD_P, GOOD_Y, n_bins=0)
    with pytest.raises(ValueError, match="grid_points"):
        risk_at_coverage_grid(GOOD_P, GOOD_Y, grid_points=1)
