import math

import numpy as np
import pytest

from bench.report.stats import mean_ci, paired_pvalue


def test_mean_ci_contains_mean_and_shrinks_with_more_seeds():
    rng = np.random.default_rng(0)
    few = mean_ci(list(rng.normal(1.0, 0.1, 5)))
    many = mean_ci(list(rng.normal(1.0, 0.1, 200)))
    assert few.lo <= few.mean <= few.hi
    assert (many.hi - many.lo) < (few.hi - few.lo)
    assert many.lo < 1.0 < many.hi


def test_mean_ci_edge_cases():
    one = mean_ci([0.5])
    assert one.mean == 0.5 and math.isnan(one.lo) and one.n == 1
    same = mean_ci([0.2, 0.2, 0.2])
    assert (same.lo, same.hi) == (0.2, 0.2)
    assert mean_ci([None, float("nan")]).n == 0
    assert mean_ci([1.0, None, 3.0]).mean == 2.0


def test_paired_pvalue_against_scipy_and_edges():
    from scipy import stats

    a, b = [1.0, 2.0, 3.5, 4.0], [0.5, 1.9, 3.0, 3.2]
    assert paired_pvalue(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_pvalue([1.0, 2.0], [0.0, 1.0]) == 0.0  # constant non-zero difference
    assert paired_pvalue([1.0, 2.0], [1.0, 2.0]) == 1.0
    assert math.isnan(paired_pvalue([1.0], [0.0]))
