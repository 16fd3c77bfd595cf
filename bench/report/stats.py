"""Statistics over seeds: mean with a bootstrap 95% CI, and a paired test against a baseline."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    """Mean and confidence interval of one metric over seeds."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2


def mean_ci(values: list[float | None], confidence: float = 0.95, seed: int = 0) -> Summary:
    """Mean and percentile-bootstrap CI (scipy.stats.bootstrap); NaN CI with one value."""
    vals = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(vals)
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, 0)
    mean = float(vals.mean())
    if n == 1:
        return Summary(mean, math.nan, math.nan, 1)
    if np.all(vals == vals[0]):
        return Summary(float(vals[0]), float(vals[0]), float(vals[0]), n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that few seeds make a rough interval
        res = stats.bootstrap(
            (vals,),
            np.mean,
            confidence_level=confidence,
            n_resamples=2000,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return Summary(mean, float(res.confidence_interval.low), float(res.confidence_interval.high), n)


def paired_pvalue(values: list[float | None], baseline: list[float | None]) -> float:
    """Two-sided paired t-test over seeds (values[i] and baseline[i] share seed i).

    NaN when fewer than two complete pairs; a constant non-zero difference gives 0
    (the t statistic is infinite), identical values give 1.
    """
    pairs = [
        (a, b)
        for a, b in zip(values, baseline, strict=True)
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
    ]
    if len(pairs) < 2:
        return math.nan
    diffs = np.array([a - b for a, b in pairs])
    if np.allclose(diffs, diffs[0], rtol=0, atol=1e-12):
        return 1.0 if abs(diffs[0]) <= 1e-12 else 0.0
    return float(stats.ttest_rel([a for a, _ in pairs], [b for _, b in pairs]).pvalue)
