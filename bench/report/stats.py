"""Statistics over seeds: mean with a Student-t 95% interval, and a paired t-test against a
baseline; cells whose values do not change with the seed are marked deterministic."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    """Mean and 95% interval of one metric over seeds.

    ``deterministic``: the n ≥ 2 values are identical (the cell does not depend on the
    seed), so there is no interval to give and nothing to test: lo = hi = mean."""

    mean: float
    lo: float
    hi: float
    n: int
    deterministic: bool = False

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2


def mean_ci(values: list[float | None], confidence: float = 0.95) -> Summary:
    """Mean and Student-t interval over seeds: mean ± t(1 − α/2, n − 1) · s / √n.

    Exact coverage for normal data at any n ≥ 2 (the percentile bootstrap it replaces
    covered 51%, 75% and 81% at n = 2, 3, 5 in simulation); NaN interval with one value."""
    vals = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(vals)
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, 0)
    mean = float(vals.mean())
    if n == 1:
        return Summary(mean, math.nan, math.nan, 1)
    if np.all(vals == vals[0]):
        return Summary(float(vals[0]), float(vals[0]), float(vals[0]), n, deterministic=True)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * vals.std(ddof=1) / math.sqrt(n))
    return Summary(mean, mean - half, mean + half, n)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment (Holm 1979) of a family of p-values; NaN stays NaN.

    Sorted ascending, p_(i) becomes max_{j ≤ i} min(1, (m − j + 1) · p_(j)) over the m
    finite p-values; rejecting where the adjusted p < α controls the family-wise error."""
    finite = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    out = [math.nan] * len(pvalues)
    m, running = len(finite), 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def paired_pvalue(values: list[float | None], baseline: list[float | None]) -> float:
    """Two-sided paired t-test over seeds (values[i] and baseline[i] share seed i).

    NaN (no test) when fewer than two complete pairs, or when both sides are the same on
    every seed (deterministic cells: the difference is exact, not a sample); otherwise a
    constant non-zero difference gives 0 (the t statistic is infinite), none gives 1.
    """
    pairs = [
        (a, b)
        for a, b in zip(values, baseline, strict=True)
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
    ]
    if len(pairs) < 2:
        return math.nan
    if len({a for a, _ in pairs}) == 1 and len({b for _, b in pairs}) == 1:
        return math.nan
    p = shift_pvalue(np.array([a - b for a, b in pairs]))
    return math.nan if p is None else p


def shift_pvalue(diffs: np.ndarray) -> float | None:
    """Two-sided one-sample t-test of paired differences against 0 (the paired t-test).

    None with fewer than two differences. Identical differences have no spread: the t
    statistic is infinite, so p = 0 for a non-zero shift and 1 for none."""
    if len(diffs) < 2:
        return None
    if np.allclose(diffs, diffs[0], rtol=0, atol=1e-12):
        return 1.0 if abs(diffs[0]) <= 1e-12 else 0.0
    return float(stats.ttest_1samp(diffs, 0.0).pvalue)
