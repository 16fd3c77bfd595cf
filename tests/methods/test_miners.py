"""Triplet miners (methods.miners, family "miner"): hand-made cases, naive loops, and
pytorch-metric-learning's miners."""

import itertools

import pytest
import torch

from bench import registry
from methods.loss_cores import pairwise_squared_distance

MINERS = ("all", "random", "semihard", "hardest")


def batch(seed=0, n_classes=3, per_class=4, dim=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_classes * per_class, dim, generator=g, dtype=torch.float64)
    return x, torch.arange(n_classes).repeat_interleave(per_class)


def triplets(t):
    """The set of (anchor, positive, negative) index triplets in a Tuples."""
    out = set()
    for r, (a, p) in enumerate(zip(t.anchor.tolist(), t.positive.tolist(), strict=True)):
        out.update((a, p, n) for n in t.negative_mask[r].nonzero().flatten().tolist())
    return out


def test_every_registered_miner_is_listed_here():
    assert set(registry.names("miner")) == set(MINERS)


@pytest.mark.parametrize("name", MINERS)
def test_mined_triplets_are_valid(name):
    x, y = batch()
    t = registry.get("miner", name)()(x, y)
    assert t.negative_mask.shape == (len(t), len(y))
    for a, p, n in triplets(t):
        assert a != p and y[a] == y[p] and y[a] != y[n]


def test_all_is_every_valid_triplet():
    x, y = batch(1)
    want = {
        (a, p, n)
        for a, p, n in itertools.permutations(range(len(y)), 3)
        if y[a] == y[p] and y[a] != y[n]
    }
    assert triplets(registry.get("miner", "all")()(x, y)) == want


def test_random_picks_exactly_one_negative_per_pair_and_is_seeded():
    x, y = batch(2)
    miner = registry.get("miner", "random")
    t = miner(torch.Generator().manual_seed(0))(x, y)
    assert (t.negative_mask.sum(1) == 1).all()
    again = miner(torch.Generator().manual_seed(0))(x, y)
    assert torch.equal(t.negative_mask, again.negative_mask)
    other = miner(torch.Generator().manual_seed(1))(x, y)
    assert not torch.equal(t.negative_mask, other.negative_mask)


def test_semihard_picks_only_semihard_negatives_and_all_of_them():
    x, y = batch(3, dim=3)
    d = pairwise_squared_distance(x)
    margin = 0.5
    t = registry.get("miner", "semihard")(margin=margin)(x, y)
    got = triplets(t)
    want = {
        (a, p, n)
        for a, p, n in itertools.permutations(range(len(y)), 3)
        if y[a] == y[p] and y[a] != y[n] and d[a, p] < d[a, n] <= d[a, p] + margin
    }
    assert got == want and len(want) > 0
    for a, p, n in got:  # farther than the positive, inside the margin
        assert d[a, p] < d[a, n] <= d[a, p] + margin


def test_semihard_on_a_hand_made_line():
    # 1-D points on the unit circle: anchor at 0°, positive at 40°, negatives at 20° (hard),
    # 50° (semi-hard for margin 0.4) and 120° (easy)
    ang = torch.tensor([0.0, 40.0, 20.0, 50.0, 120.0]).deg2rad()
    x = torch.stack([ang.cos(), ang.sin()], 1)
    y = torch.tensor([0, 0, 1, 1, 1])
    t = registry.get("miner", "semihard")(margin=0.4)(x, y)
    row = ((t.anchor == 0) & (t.positive == 1)).nonzero().item()
    assert t.negative_mask[row].nonzero().flatten().tolist() == [3]


def test_hardest_is_the_farthest_positive_and_closest_negative_per_anchor():
    x, y = batch(4)
    d = pairwise_squared_distance(x)
    t = registry.get("miner", "hardest")()(x, y)
    assert t.anchor.tolist() == list(range(len(y)))
    for r, a in enumerate(t.anchor.tolist()):
        pos = [j for j in range(len(y)) if j != a and y[j] == y[a]]
        neg = [j for j in range(len(y)) if y[j] != y[a]]
        assert t.positive[r].item() == max(pos, key=lambda j: d[a, j].item())
        assert t.negative_mask[r].nonzero().flatten().tolist() == [
            min(neg, key=lambda j: d[a, j].item())
        ]


def test_hardest_skips_anchors_without_a_positive():
    x, y = batch(5)
    y = y.clone()
    y[0] = 9  # a singleton class
    t = registry.get("miner", "hardest")()(x, y)
    assert 0 not in t.anchor.tolist()


@pytest.fixture
def pml():
    return pytest.importorskip(
        "pytorch_metric_learning",
        reason="pytorch-metric-learning is not installed (pip install -e '.[dev]')",
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_pml_miners(pml, seed):
    from pytorch_metric_learning import distances, miners

    x, y = batch(seed, n_classes=4, per_class=4, dim=4)
    sq = distances.LpDistance(power=2)
    ref = miners.TripletMarginMiner(margin=0.3, type_of_triplets="semihard", distance=sq)(x, y)
    want = set(zip(*(r.tolist() for r in ref), strict=True))
    assert triplets(registry.get("miner", "semihard")(margin=0.3)(x, y)) == want
    ref = miners.TripletMarginMiner(margin=0.3, type_of_triplets="all", distance=sq)(x, y)
    want_all = set(zip(*(r.tolist() for r in ref), strict=True))  # PML "all" = hinge > 0
    got_all = {
        (a, p, n)
        for a, p, n in triplets(registry.get("miner", "all")()(x, y))
        if 0 < 0.3 + pairwise_squared_distance(x)[a, p] - pairwise_squared_distance(x)[a, n]
    }
    assert got_all == want_all
    a, p, n = miners.BatchHardMiner(distance=sq)(x, y)
    want = {(i, j, k) for i, j, k in zip(a.tolist(), p.tolist(), n.tolist(), strict=True)}
    assert triplets(registry.get("miner", "hardest")()(x, y)) == want
