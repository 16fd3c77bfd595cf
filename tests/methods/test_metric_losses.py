"""Metric-learning losses (methods.metric_losses, family "loss"): hand-made cases, naive
loops over pairs/triplets, and pytorch-metric-learning's implementations of the same losses."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from bench import registry
from methods import loss_cores
from methods.metric_losses import Tuples, all_tuples

LOSSES = ("contrastive", "ntxent", "triplet", "proxy_nca", "proxy_anchor")


def make(name, num_classes=3, dim=2, **kwargs):
    cls = registry.get("loss", name)
    if cls.needs_proxies:
        return cls(num_classes=num_classes, embedding_dim=dim, **kwargs)
    return cls(**kwargs)


def batch(seed=0, n_classes=3, per_class=4, dim=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_classes * per_class, dim, generator=g, dtype=torch.float64)
    y = torch.arange(n_classes).repeat_interleave(per_class)
    return x, y


def unit(*v):
    return F.normalize(torch.tensor(v, dtype=torch.float64), dim=-1)


def test_every_registered_loss_is_listed_here():
    # a baseline without training is loss "-" in the tasks, never a registered "loss"
    assert set(registry.names("loss")) == set(LOSSES)


@pytest.mark.parametrize("name", LOSSES)
def test_loss_is_finite_scalar_with_gradient(name):
    x, y = batch()
    x.requires_grad_(True)
    loss = make(name, dim=x.shape[1]).double()
    out = loss(x, y)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", LOSSES)
def test_bad_shapes_are_explained(name):
    with pytest.raises(ValueError, match="embeddings"):
        make(name)(torch.zeros(4, 2), torch.zeros(3))


# ---- zero loss when the constraints hold ------------------------------------------------
# two tight, opposite clusters: same class identical, other class antipodal (d = 2, d² = 4)
TIGHT = torch.stack([unit(1, 0), unit(1, 0), unit(-1, 0), unit(-1, 0)])
TIGHT_Y = torch.tensor([0, 0, 1, 1])


def test_contrastive_and_triplet_are_zero_when_the_margins_hold():
    assert make("contrastive")(TIGHT, TIGHT_Y).loss.item() == pytest.approx(0.0, abs=1e-5)
    out = make("triplet", margin=0.2)(TIGHT, TIGHT_Y)
    assert out.loss.item() == 0.0 and out.active == 0.0


def test_contrastive_penalises_a_negative_inside_the_margin():
    x = torch.stack([unit(1, 0), unit(1, 0.2), unit(1, 0.1)])  # all close together
    out = make("contrastive", neg_margin=1.0)(x, torch.tensor([0, 0, 1]))
    assert out.loss.item() > 0 and out.active > 0


def test_proxy_losses_vanish_as_embeddings_sit_on_separated_proxies():
    nca = make("proxy_nca", num_classes=2, scale=20.0)
    anchor = make("proxy_anchor", num_classes=2)
    for loss in (nca, anchor):
        with torch.no_grad():
            loss.proxies.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        assert loss(TIGHT.float(), TIGHT_Y).loss.item() < 1e-6


def test_ntxent_is_low_for_tight_clusters_and_high_when_swapped():
    low = make("ntxent", temperature=0.1)(TIGHT, TIGHT_Y).loss.item()
    high = make("ntxent", temperature=0.1)(TIGHT, torch.tensor([0, 1, 0, 1])).loss.item()
    assert low < 1e-3 and high > 10


# ---- gradient sign: descent pulls positives together and pushes negatives apart --------
@pytest.mark.parametrize("name", LOSSES)
def test_gradient_step_pulls_positive_closer_and_pushes_negative_away(name):
    # anchor a and positive p 60° apart, negative n 30° from a: every loss is active
    x = torch.stack([unit(1, 0), unit(0.5, math.sqrt(3) / 2), unit(math.sqrt(3) / 2, -0.5)])
    y = torch.tensor([0, 0, 1])
    x.requires_grad_(True)
    loss = make(name, num_classes=2).double()
    if loss.needs_proxies:
        with torch.no_grad():  # proxies at the class means' directions
            loss.proxies.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
    loss(x, y).loss.backward()
    step = (x - 0.01 * x.grad).detach()
    d = loss_cores.squared_distance
    assert d(step[0], step[1]) < d(x[0], x[1]).detach()  # positive pulled in
    assert d(step[0], step[2]) > d(x[0], x[2]).detach()  # negative pushed out


# ---- against naive loops ----------------------------------------------------------------
def naive_triplets(y, keep=None):
    out = []
    for a, p, n in itertools.permutations(range(len(y)), 3):
        if y[a] == y[p] and y[a] != y[n] and (keep is None or keep(a, p, n)):
            out.append((a, p, n))
    return out


def test_triplet_matches_a_loop_over_all_triplets():
    x, y = batch(1)
    d = loss_cores.squared_distance
    vals = [F.relu(d(x[a], x[p]) - d(x[a], x[n]) + 0.2) for a, p, n in naive_triplets(y)]
    got = make("triplet", margin=0.2)(x, y).loss
    assert got.item() == pytest.approx(torch.stack(vals).mean().item(), rel=1e-9)


def test_triplet_on_mined_tuples_matches_a_loop_over_those_triplets():
    x, y = batch(2)
    t = all_tuples(y)
    g = torch.Generator().manual_seed(0)
    mask = t.negative_mask & (torch.rand(t.negative_mask.shape, generator=g) < 0.3)
    d = loss_cores.squared_distance
    vals = [
        F.relu(d(x[a], x[p]) - d(x[a], x[n]) + 0.2)
        for r, (a, p) in enumerate(zip(t.anchor.tolist(), t.positive.tolist(), strict=True))
        for n in mask[r].nonzero().flatten().tolist()
    ]
    got = make("triplet")(x, y, Tuples(t.anchor, t.positive, mask)).loss
    assert got.item() == pytest.approx(torch.stack(vals).mean().item(), rel=1e-9)


def test_contrastive_matches_a_loop_over_pairs():
    x, y = batch(3)
    pos, neg = [], []
    for i, j in itertools.permutations(range(len(y)), 2):
        dist = (F.normalize(x[i], dim=0) - F.normalize(x[j], dim=0)).norm()
        (pos if y[i] == y[j] else neg).append(
            F.relu(dist - 0.1) if y[i] == y[j] else F.relu(0.8 - dist)
        )
    want = torch.stack(pos).mean() + torch.stack(neg).mean()
    got = make("contrastive", pos_margin=0.1, neg_margin=0.8)(x, y).loss
    assert got.item() == pytest.approx(want.item(), rel=1e-9)


def test_ntxent_matches_a_loop_over_positive_pairs():
    x, y = batch(4)
    tau, vals = 0.3, []
    for a, p in itertools.permutations(range(len(y)), 2):
        if y[a] != y[p]:
            continue
        s = [F.cosine_similarity(x[a], x[j], dim=0) / tau for j in range(len(y))]
        denom = torch.exp(s[p]) + sum(torch.exp(s[n]) for n in range(len(y)) if y[n] != y[a])
        vals.append(-torch.log(torch.exp(s[p]) / denom))
    got = make("ntxent", temperature=tau)(x, y).loss
    assert got.item() == pytest.approx(torch.stack(vals).mean().item(), rel=1e-9)


def test_proxy_nca_matches_a_loop():
    x, y = batch(5)
    loss = make("proxy_nca", num_classes=3, dim=5, scale=3.0).double()
    w = loss.proxies.detach()
    vals = []
    for i in range(len(y)):
        e = [torch.exp(-3.0 * loss_cores.squared_distance(x[i], w[z])) for z in range(3)]
        vals.append(-torch.log(e[y[i]] / sum(e)))
    assert loss(x, y).loss.item() == pytest.approx(torch.stack(vals).mean().item(), rel=1e-9)


def test_proxy_anchor_matches_a_loop_over_proxies():
    x, y = batch(6)
    y = torch.where(y == 2, 1, y)  # class 2 has no positives in the batch: left out of P⁺
    loss = make("proxy_anchor", num_classes=3, dim=5).double()
    w = loss.proxies.detach()
    alpha, delta = 32.0, 0.1
    pos_terms, neg_terms = [], []
    for c in range(3):
        s = [F.cosine_similarity(x[i], w[c], dim=0) for i in range(len(y))]
        members = [i for i in range(len(y)) if y[i] == c]
        if members:
            pos_terms.append(torch.log1p(sum(torch.exp(-alpha * (s[i] - delta)) for i in members)))
        others = [i for i in range(len(y)) if y[i] != c]
        neg_terms.append(torch.log1p(sum(torch.exp(alpha * (s[i] + delta)) for i in others)))
    want = sum(pos_terms) / len(pos_terms) + sum(neg_terms) / 3
    assert loss(x, y).loss.item() == pytest.approx(want.item(), rel=1e-9)


def test_proxy_nca_core_keeps_the_ssl_default_without_the_positive():
    a, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    w = torch.randn(3, 3)
    excl = loss_cores.proxy_nca(a, w, y)
    incl = loss_cores.proxy_nca(a, w, y, exclude_positive=False)
    assert (incl > excl).all() and (incl >= 0).all()


# ---- against pytorch-metric-learning -----------------------------------------------------
@pytest.fixture
def pml():
    return pytest.importorskip(
        "pytorch_metric_learning",
        reason="pytorch-metric-learning is not installed (pip install -e '.[dev]')",
    )


def _pml_parts():
    from pytorch_metric_learning import distances, reducers
    from pytorch_metric_learning import losses as pml_losses

    return distances, pml_losses, reducers


@pytest.mark.parametrize("seed", [0, 1])
def test_against_pml_contrastive_ntxent_triplet(pml, seed):
    distances, pl, reducers = _pml_parts()
    x, y = batch(seed, n_classes=4, per_class=3, dim=6)
    mean = reducers.MeanReducer()
    ref = pl.ContrastiveLoss(pos_margin=0.1, neg_margin=0.9, reducer=mean)(x, y)
    got = make("contrastive", pos_margin=0.1, neg_margin=0.9)(x, y).loss
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)
    ref = pl.NTXentLoss(temperature=0.2, reducer=mean)(x, y)
    assert make("ntxent", temperature=0.2)(x, y).loss.item() == pytest.approx(ref.item(), rel=1e-6)
    ref = pl.TripletMarginLoss(margin=0.2, distance=distances.LpDistance(power=2), reducer=mean)(
        x, y
    )
    assert make("triplet", margin=0.2)(x, y).loss.item() == pytest.approx(ref.item(), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_against_pml_proxy_losses(pml, seed):
    _, pl, reducers = _pml_parts()
    x, y = batch(seed, n_classes=4, per_class=3, dim=6)
    x = x.float()
    mine = make("proxy_nca", num_classes=4, dim=6, scale=2.0)
    ref = pl.ProxyNCALoss(4, 6, softmax_scale=2.0, reducer=reducers.MeanReducer())
    ref.proxies.data.copy_(mine.proxies.data)
    assert mine(x, y).loss.item() == pytest.approx(ref(x, y).item(), rel=1e-5)
    mine = make("proxy_anchor", num_classes=5, dim=6)  # class 4 absent from the batch
    ref = pl.ProxyAnchorLoss(5, 6, margin=0.1, alpha=32)
    ref.proxies.data.copy_(mine.proxies.data)
    assert mine(x, y).loss.item() == pytest.approx(ref(x, y).item(), rel=1e-5)
