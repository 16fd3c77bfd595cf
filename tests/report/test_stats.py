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
    assert (same.lo, same.hi) == (0.2, 0.2) and same.deterministic
    assert mean_ci([None, float("nan")]).n == 0
    assert mean_ci([1.0, None, 3.0]).mean == 2.0


def test_paired_pvalue_against_scipy_and_edges():
    from scipy import stats

    a, b = [1.0, 2.0, 3.5, 4.0], [0.5, 1.9, 3.0, 3.2]
    assert paired_pvalue(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_pvalue([1.0, 2.0], [0.0, 1.0]) == 0.0  # constant non-zero difference
    assert paired_pvalue([1.0, 2.0], [1.0, 2.0]) == 1.0  # seed-dependent, equal: no effect
    assert math.isnan(paired_pvalue([1.0], [0.0]))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_student_t_interval_covers_the_true_mean_95_percent_of_the_time(n):
    """Coverage by simulation on normal data: within [93%, 97%] (4,000 runs: SE 0.34%)."""
    rng = np.random.default_rng(n)
    true_mean, runs = 1.7, 4000
    covered = 0
    for _ in range(runs):
        s = mean_ci(list(rng.normal(true_mean, 0.3, n)))
        covered += s.lo <= true_mean <= s.hi
    assert 0.93 <= covered / runs <= 0.97


def test_interval_is_the_t_formula_by_hand():
    values = [1.0, 2.0, 4.0]  # mean 7/3, s = sqrt(7/3)
    s = mean_ci(values)
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * math.sqrt(7 / 3) / math.sqrt(3)  # t(0.975, 2) = 4.3027
    assert s.mean == pytest.approx(7 / 3) and s.half_width == pytest.approx(half)
    assert not s.deterministic


def test_identical_values_are_deterministic_not_plus_minus_zero():
    same = mean_ci([1.49, 1.49, 1.49])
    assert same.deterministic and same.n == 3 and same.half_width == 0
    # two deterministic cells: the difference is exact, not a sample -> no test, no dagger
    assert math.isnan(paired_pvalue([1.505, 1.505, 1.505], [1.49, 1.49, 1.49]))
    # a seed-dependent row against a deterministic baseline is still tested
    assert paired_pvalue([1.6, 1.7, 1.65], [1.49, 1.49, 1.49]) < 0.05


def test_holm_by_hand():
    from bench.report.stats import holm

    # sorted 0.01, 0.02, 0.04 with m = 3: 0.03, 0.04, max(0.04, 0.04) = 0.04
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, math.nan, 0.01]) == pytest.approx([0.5, math.nan, 0.02], nan_ok=True)
    assert holm([0.6, 0.9]) == [1.0, 1.0]  # capped at 1, kept monotone
    assert holm([]) == []
