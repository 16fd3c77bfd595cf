"""Statistics over test items: a bootstrap interval of a cell's metric, and paired tests of
two cells (a method against its baseline, or a cell against the same cell of another run).

The unit resampled is the test item, pooled across seeds (Bisani & Ney 2004 for WER;
Koehn 2004): a replicate draws the N items of a test set with replacement, and the same
draw is applied to every cell, seed and run that was scored on that set, so differences
are paired item by item. Where all seeds share one test set, one draw covers them all
(items are the clusters); where seeds have different test sets, each set has its own draw.
The metric of a replicate is the mean over seeds of the metric of each seed's resampled
items, computed through the task's item forms (``bench.metrics.weighted``), so any table
metric is resampled, not just means.

What this measures is the uncertainty due to the finite test set, given the trained
models; the spread over training seeds is the other half (``bench.report.stats``), and
the report shows both. For a 0/1 metric (accuracy) the paired test is McNemar's exact test
on the discordant (seed, item) pairs; for every other metric it is the paired bootstrap
test: p = (1 + #{|Δ* − Δ| ≥ |Δ|}) / (B + 1), from the replicates Δ* of the difference Δ.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from bench.metrics.weighted import ItemForm, Mean, bootstrap_counts, evaluate

N_BOOT = 1000  # replicates: p-values resolve to 1/1001; Monte Carlo error of p = 0.05 is ±0.007
POWER = 0.8

Items = Mapping[str, Mapping[str, np.ndarray]]  # split -> column -> per-item values


class ItemsDiffer(ValueError):
    """Two cells that should share test items do not (the evaluation set changed)."""


@dataclass(frozen=True)
class Aligned:
    """One cell's columns of a split, sorted by item id, and the key of its item set."""

    columns: dict[str, np.ndarray]
    key: str  # hash of the sorted item ids


def align(items: Items, split: str) -> Aligned:
    columns = items[split]
    ids = np.asarray(columns["item_id"]).astype(str)
    order = np.argsort(ids, kind="stable")
    key = hashlib.sha256("\n".join(ids[order].tolist()).encode()).hexdigest()[:16]
    return Aligned({k: np.asarray(v)[order] for k, v in columns.items()}, key)


@lru_cache(maxsize=64)
def bootstrap_weights(key: str, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) multinomial counts for the item set ``key``: the same draw for every cell
    scored on that set (seeded by the key, so reports are reproducible)."""
    weights = bootstrap_counts(np.random.default_rng(int(key, 16) % 2**63), n, n_boot)
    weights.flags.writeable = False
    return weights


@dataclass
class Replicates:
    """A cell's metric per seed: the value on all items, and its bootstrap replicates."""

    point: dict[int, float]  # seed -> metric on the test set as scored
    boot: dict[int, np.ndarray]  # seed -> (n_boot,) metric on resampled items
    keys: dict[int, str]  # seed -> item-set key

    def mean(self, seeds: Sequence[int]) -> tuple[float, np.ndarray]:
        point = float(np.mean([self.point[s] for s in seeds]))
        return point, np.mean([self.boot[s] for s in seeds], axis=0)


def replicates(
    form: ItemForm, items_by_seed: Mapping[int, Items], n_boot: int = N_BOOT
) -> Replicates | None:
    """The form's metric for each seed that has items of the form's split (None: none has)."""
    point: dict[int, float] = {}
    boot: dict[int, np.ndarray] = {}
    keys: dict[int, str] = {}
    for seed, items in sorted(items_by_seed.items()):
        if form.split not in items:
            continue
        aligned = align(items, form.split)
        n = len(aligned.columns["item_id"])
        sorted_items = {form.split: aligned.columns}
        value = evaluate(form, sorted_items, np.ones((1, n)))
        if value is None:
            continue
        boots = evaluate(form, sorted_items, bootstrap_weights(aligned.key, n, n_boot))
        assert boots is not None  # the same columns as the point value
        point[seed], boot[seed], keys[seed] = float(value[0]), boots, aligned.key
    return Replicates(point, boot, keys) if point else None


def interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (NaN replicates left out)."""
    kept = values[np.isfinite(values)]
    if len(kept) == 0:
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(kept, [tail, 100 - tail])
    return float(lo), float(hi)


@dataclass(frozen=True)
class ItemTest:
    """A paired test over items of ``new − old``."""

    delta: float  # new − old on the test sets as scored (mean over seeds)
    lo: float  # percentile bootstrap 95% interval of the difference
    hi: float
    p: float  # two-sided
    se: float  # bootstrap standard error of the difference
    test: str  # "bootstrap" or "McNemar"
    seeds: int
    items: int  # items per seed

    @property
    def mde(self) -> float:
        """Smallest difference this comparison detects at α = 0.05 with 80% power:
        (z_0.975 + z_0.8) · SE, about 2.8 standard errors."""
        return minimum_detectable(self.se)


def minimum_detectable(se: float, alpha: float = 0.05, power: float = POWER) -> float:
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se)


def paired_test(
    form: ItemForm,
    new: Replicates,
    old: Replicates,
    new_items: Mapping[int, Items],
    old_items: Mapping[int, Items],
) -> ItemTest | None:
    """``new`` against ``old`` over the seeds both have; ItemsDiffer when a seed's test
    items differ between the two (None: no common seed)."""
    seeds = sorted(set(new.point) & set(old.point))
    if not seeds:
        return None
    for s in seeds:
        if new.keys[s] != old.keys[s]:
            raise ItemsDiffer(
                _difference(new_items[s][form.split], old_items[s][form.split], form.split, s)
            )
    new_point, new_boot = new.mean(seeds)
    old_point, old_boot = old.mean(seeds)
    delta, boot = new_point - old_point, new_boot - old_boot
    finite = boot[np.isfinite(boot)]
    lo, hi = interval(boot)
    se = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
    n_items = len(np.asarray(new_items[seeds[0]][form.split]["item_id"]))
    if isinstance(form, Mean) and form.binary:
        p = mcnemar(form, [new_items[s] for s in seeds], [old_items[s] for s in seeds])
        test = "McNemar"
    else:
        if not math.isfinite(delta) or len(finite) == 0:
            p = math.nan
        else:
            p = float((1 + np.sum(np.abs(finite - delta) >= abs(delta))) / (len(finite) + 1))
        test = "bootstrap"
    return ItemTest(delta, lo, hi, p, se, test, len(seeds), n_items)


def mcnemar(form: Mean, new: Sequence[Items], old: Sequence[Items]) -> float:
    """McNemar's exact test (two-sided binomial on the discordant pairs), pooled over the
    (seed, item) pairs; 1.0 when no pair is discordant."""
    gained = lost = 0
    for a, b in zip(new, old, strict=True):
        x = form.per_item(align(a, form.split).columns)
        y = form.per_item(align(b, form.split).columns)
        kept = np.isfinite(x) & np.isfinite(y)
        gained += int(np.sum((x[kept] == 1) & (y[kept] == 0)))
        lost += int(np.sum((x[kept] == 0) & (y[kept] == 1)))
    if gained + lost == 0:
        return 1.0
    return float(stats.binomtest(gained, gained + lost, 0.5).pvalue)


def _difference(new: Mapping[str, np.ndarray], old: Mapping[str, np.ndarray], split, seed) -> str:
    a = set(np.asarray(new["item_id"]).astype(str).tolist())
    b = set(np.asarray(old["item_id"]).astype(str).tolist())
    return (
        f"split {split!r}, seed {seed}: {len(b - a)} of the {len(b)} old items are missing "
        f"and {len(a - b)} are new"
    )


def seed_mde(new: Sequence[float], old: Sequence[float], alpha: float = 0.05) -> float:
    """Smallest difference a paired t-test over these n seeds detects with 80% power,
    from the observed spread of the per-seed differences: (t_{1−α/2} + t_{0.8}) · s_d/√n
    with n − 1 degrees of freedom (NaN with fewer than two seeds or no spread)."""
    d = np.asarray(new, dtype=float) - np.asarray(old, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n < 2 or np.allclose(d, d[0], rtol=0, atol=1e-12):
        return math.nan
    t = stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(POWER, n - 1)
    return float(t * np.std(d, ddof=1) / math.sqrt(n))
