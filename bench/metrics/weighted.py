"""Table metrics as functions of per-item weights, so that test items can be resampled.

A bootstrap replicate of a test set draws its N items with replacement; item i then counts
w_i times (w = multinomial counts, Σ w = N). Every form below computes its metric from the
item columns a task writes (``CellResult.items``) and a (B, N) matrix of such weights, for
B replicates at once, with the same definition as the task's ``metrics_from_items``: with
w = 1 it gives exactly the reported value, and with bootstrap counts exactly the value of
the duplicated subset (tests check both for every task). Bin and tie-group sums are formed
once per replicate from weighted counts, so a replicate costs a matrix product, not a
recomputation; this is what makes paired bootstraps over thousands of items cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Columns = dict[str, np.ndarray]


def bootstrap_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) multinomial counts w: each row draws the n items with replacement."""
    draws = rng.integers(0, n, size=(n_boot, n))
    weights = np.zeros((n_boot, n))
    np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1.0)
    return weights


def _onehot(index: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((len(index), size))
    out[np.arange(len(index)), index] = 1.0
    return out


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


@dataclass(frozen=True)
class Mean:
    """Mean of a per-item value over the items where it is finite (NaN: no score).

    ``binary``: the values are 0/1 (accuracy-like), so McNemar's test applies."""

    split: str
    values: Callable[[Columns], np.ndarray]
    binary: bool = False

    def per_item(self, columns: Columns) -> np.ndarray:
        return np.asarray(self.values(columns), dtype=np.float64)

    def __call__(self, columns: Columns, weights: np.ndarray) -> np.ndarray:
        v = self.per_item(columns)
        kept = np.isfinite(v)
        w = weights[:, kept]
        return _safe_divide(w @ v[kept], w.sum(1))


def column(name: str) -> Callable[[Columns], np.ndarray]:
    """The per-item values of one column."""
    return lambda c: c[name]


@dataclass(frozen=True)
class Ratio:
    """Corpus-level rate Σ w·num / Σ w·den (WER, CER, PER: edits over reference tokens).

    ``drop_empty``: items with den = 0 are left out (their insertions do not count), as
    ``bench.metrics.asr.rate_from_counts`` does."""

    split: str
    num: str
    den: str
    drop_empty: bool = False

    def __call__(self, columns: Columns, weights: np.ndarray) -> np.ndarray:
        num = np.asarray(columns[self.num], dtype=np.float64)
        den = np.asarray(columns[self.den], dtype=np.float64)
        kept = den > 0 if self.drop_empty else np.ones(len(den), dtype=bool)
        w = weights[:, kept]
        return _safe_divide(w @ num[kept], w @ den[kept])


@dataclass(frozen=True)
class BinnedCalibration:
    """ECE or MCE over equal-width (lo, hi] confidence bins, as
    ``bench.metrics.calibration`` bins them (Guo et al. 2017, eq. 3 and 5)."""

    split: str
    confidence: str
    correct: str
    n_bins: int = 15
    kind: str = "ece"  # or "mce"

    def __call__(self, columns: Columns, weights: np.ndarray) -> np.ndarray:
        conf = np.asarray(columns[self.confidence], dtype=np.float64)
        hit = np.asarray(columns[self.correct], dtype=np.float64)
        edges = np.arange(1, self.n_bins + 1, dtype=np.float64) / self.n_bins
        bins = np.minimum(np.searchsorted(edges, conf, side="left"), self.n_bins - 1)
        onehot = _onehot(bins, self.n_bins)
        count = weights @ onehot
        gap = np.abs((weights * hit) @ onehot - (weights * conf) @ onehot)
        if self.kind == "ece":
            return gap.sum(1) / count.sum(1)
        per_bin = _safe_divide(gap, count)
        return np.nanmax(np.where(count > 0, per_bin, -np.inf), axis=1)


@dataclass(frozen=True)
class AdaptiveECE:
    """ECE over min(n_bins, N) equal-mass groups of the confidence-sorted items (ties
    wrong-before-correct), as ``bench.metrics.calibration.adaptive_ece``: the copies of a
    resampled item are consecutive in the sorted order, and a group boundary may split them."""

    split: str
    confidence: str
    correct: str
    n_bins: int = 15

    def __call__(self, columns: Columns, weights: np.ndarray) -> np.ndarray:
        conf = np.asarray(columns[self.confidence], dtype=np.float64)
        hit = np.asarray(columns[self.correct], dtype=np.float64)
        order = np.lexsort((hit, conf))  # by conf, then wrong (0) before correct (1)
        conf, hit, weights = conf[order], hit[order], weights[:, order]
        out = np.empty(len(weights))
        for r, w in enumerate(weights):
            n = int(round(w.sum()))
            b = min(self.n_bins, n)
            q, rem = divmod(n, b)
            sizes = np.array([q + 1] * rem + [q] * (b - rem))
            bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.float64)
            # cumulative (correct − conf) at a position p of the expanded sequence: linear
            # inside each item's block of w_i identical copies
            ends = np.cumsum(w)
            gap = hit - conf
            cum = np.concatenate([[0.0], np.cumsum(w * gap)])
            k = np.minimum(np.searchsorted(ends, bounds, side="left"), len(w) - 1)
            start = ends[k] - w[k]
            at = cum[k] + (bounds - start) * gap[k]
            out[r] = np.abs(np.diff(at)).sum() / n
        return out


@dataclass(frozen=True)
class Selective:
    """Selective-prediction AUROC or AURC of the confidence, from weighted tie groups (the
    tie-group cores of ``bench.metrics.selective``: average ranks, ties accepted together)."""

    split: str
    confidence: str
    correct: str
    kind: str = "auroc"  # or "aurc"

    def __call__(self, columns: Columns, weights: np.ndarray) -> np.ndarray:
        conf = np.asarray(columns[self.confidence], dtype=np.float64)
        hit = np.asarray(columns[self.correct], dtype=np.float64)
        levels, group = np.unique(conf, return_inverse=True)
        onehot = _onehot(group.ravel(), len(levels))
        counts = weights @ onehot  # (B, L) ascending confidence
        n_correct = (weights * hit) @ onehot
        if self.kind == "auroc":
            n_pos = n_correct.sum(1)
            n_neg = counts.sum(1) - n_pos
            avg_rank = np.cumsum(counts, 1) - (counts - 1.0) / 2.0
            u = (n_correct * avg_rank).sum(1) - n_pos * (n_pos + 1.0) / 2.0
            return _safe_divide(u, n_pos * n_neg)
        accepted = np.cumsum(counts[:, ::-1], 1)  # highest confidence first
        errors = np.cumsum((counts - n_correct)[:, ::-1], 1)
        risk = np.where(accepted > 0, errors / np.where(accepted > 0, accepted, 1.0), 0.0)
        widths = counts[:, ::-1]
        return (risk * widths).sum(1) / accepted[:, -1]


@dataclass(frozen=True)
class MacroF1:
    """Macro-averaged F1 over the classes that occur as label or prediction (as
    scikit-learn's ``f1_score(average="macro")`` with its default labels)."""

    split: str
    label: str
    pred: str

    def __call__(self, columns: Columns, weights: np.ndarray) -> np.ndarray:
        y = np.asarray(columns[self.label]).astype(np.int64)
        p = np.asarray(columns[self.pred]).astype(np.int64)
        k = int(max(y.max(), p.max())) + 1
        true, pred = _onehot(y, k), _onehot(p, k)
        tp = weights @ (true * pred)
        support, predicted = weights @ true, weights @ pred
        f1 = _safe_divide(2 * tp, support + predicted)
        present = (support + predicted) > 0
        return np.where(present, np.nan_to_num(f1), 0.0).sum(1) / present.sum(1)


ItemForm = Mean | Ratio | BinnedCalibration | AdaptiveECE | Selective | MacroF1


def evaluate(form: ItemForm, items, weights: np.ndarray) -> np.ndarray | None:
    """The form on ``items[form.split]`` (split -> columns) for each row of ``weights``;
    None when the cell has no such split or lacks a column the form reads (e.g. no
    language-model decoding on the dev set)."""
    if form.split not in items:
        return None
    try:
        return form(items[form.split], weights)
    except KeyError:
        return None


def calibration_forms(
    split: str, n_bins: int, confidence: str = "confidence", correct: str = "correct"
) -> dict[str, ItemForm]:
    """ECE, MCE, adaptive ECE, selective AUROC and AURC of one (confidence, correct) pair."""
    args = (split, confidence, correct)
    return {
        "ece": BinnedCalibration(*args, n_bins=n_bins),
        "mce": BinnedCalibration(*args, n_bins=n_bins, kind="mce"),
        "adaptive_ece": AdaptiveECE(*args, n_bins=n_bins),
        "auroc": Selective(*args),
        "aurc": Selective(*args, kind="aurc"),
    }


def classifier_forms(split: str, n_bins: int) -> dict[str, ItemForm]:
    """Every metric of ``bench.metrics.calibration.metrics_from_items`` but E-AURC, from the
    columns of ``calibration_items``."""
    return {
        "accuracy": Mean(split, column("correct"), binary=True),
        "nll": Mean(split, column("nll")),
        "brier": Mean(split, column("brier")),
        **calibration_forms(split, n_bins),
    }


def retrieval_forms(split: str = "test") -> dict[str, ItemForm]:
    """Recall@1 and MAP@R, which are means over queries (``retrieval_items``); NMI and EER
    are functions of the whole set (clusters, all pairs), with no per-query form."""
    return {
        "recall_at_1": Mean(split, lambda c: np.asarray(c["rank"]) == 1, binary=True),
        "map_at_r": Mean(split, column("ap_at_r")),
    }
