"""The paired tests over items hold their level under the null, detect the difference the
report calls detectable about 80% of the time, and pair the same draw across cells."""

import math

import numpy as np
import pytest

from bench.metrics.weighted import Mean, column
from bench.report import item_stats
from bench.report.item_stats import ItemsDiffer, paired_test, replicates

N = 400
IDS = np.array([f"u{i:04d}" for i in range(N)])
FORM = Mean("test", column("score"))


def _cells(values_by_seed):
    return {s: {"test": {"item_id": IDS, "score": v}} for s, v in values_by_seed.items()}


def _test(new, old):
    a, b = _cells(new), _cells(old)
    return paired_test(FORM, replicates(FORM, a), replicates(FORM, b), a, b)


def test_identical_cells_give_p_one_and_no_spread():
    v = {0: np.random.default_rng(0).normal(size=N)}
    t = _test(v, v)
    assert t.delta == 0 and t.p == 1.0 and t.se == 0 and t.lo == t.hi == 0


def test_level_under_the_null_and_power_at_the_stated_detectable_difference():
    """Null: item scores of both sides exchangeable -> rejects about 5%. Shifted by the
    detectable difference the test reports -> rejects about 80%."""
    rng = np.random.default_rng(1)
    rejections, detected, trials = 0, 0, 200
    for _ in range(trials):
        item_effect = rng.normal(size=N)  # shared by both sides: the pairing
        old = item_effect + rng.normal(size=N)
        new = item_effect + rng.normal(size=N)
        t = _test({0: new}, {0: old})
        rejections += t.p < 0.05
        shifted = _test({0: new + t.mde}, {0: old})
        detected += shifted.p < 0.05
    assert 0.02 <= rejections / trials <= 0.09
    assert 0.70 <= detected / trials <= 0.90


def test_seeds_share_one_draw_of_the_items():
    """The same test set on every seed: one draw of items for all of them (and for every
    cell scored on it), so the per-seed replicates move together."""
    rng = np.random.default_rng(2)
    base = rng.normal(size=N)
    rep = replicates(FORM, _cells({0: base, 1: base + 1.0}))
    np.testing.assert_allclose(rep.boot[1] - rep.boot[0], 1.0)
    shuffled = {"test": {"item_id": IDS[::-1], "score": base[::-1]}}
    again = replicates(FORM, {0: shuffled})
    np.testing.assert_allclose(again.boot[0], rep.boot[0])  # order of the items is irrelevant


def test_changed_items_raise_and_name_the_difference():
    a = _cells({0: np.zeros(N)})
    b = {0: {"test": {"item_id": IDS[:360], "score": np.zeros(360)}}}
    with pytest.raises(ItemsDiffer, match="0 of the 360 old items are missing and 40 are new"):
        paired_test(FORM, replicates(FORM, a), replicates(FORM, b), a, b)


def test_mcnemar_exact_on_discordant_pairs():
    form = Mean("test", column("correct"), binary=True)
    old = np.ones(N)
    new = old.copy()
    new[:10] = 0  # 10 lost, 0 gained
    new_cells, old_cells = ({0: {"test": {"item_id": IDS, "correct": v}}} for v in (new, old))
    t = paired_test(
        form, replicates(form, new_cells), replicates(form, old_cells), new_cells, old_cells
    )
    assert t.test == "McNemar" and t.p == pytest.approx(2 * 0.5**10)


def test_seed_mde_matches_the_t_formula():
    new, old = [0.31, 0.35, 0.30], [0.28, 0.29, 0.30]
    d = np.subtract(new, old)
    want = (4.302653 + 1.060660) * d.std(ddof=1) / math.sqrt(3)  # t_0.975,2 + t_0.8,2
    assert item_stats.seed_mde(new, old) == pytest.approx(want, rel=1e-5)
    assert math.isnan(item_stats.seed_mde([1.0, 1.0], [0.5, 0.5]))  # no spread: no test
