"""Tests for methods.loss_cores: each core against a naive per-row loop and hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from methods.loss_cores import info_nce, proxy_nca, squared_distance, triplet_margin

N, K, D = 7, 5, 6


def tuples(seed: int = 0, n: int = N, k: int = K, d: int = D):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    p = torch.randn(n, d, generator=g, dtype=torch.float64)
    neg = torch.randn(n, k, d, generator=g, dtype=torch.float64)
    mask = torch.rand(n, k, generator=g) > 0.3
    mask[0] = False  # a row with no valid negative
    mask[1] = True
    return a, p, neg, mask


def cos(x: torch.Tensor, y: torch.Tensor) -> float:
    return torch.cosine_similarity(x, y, dim=0).item()


def dist(x: torch.Tensor, y: torch.Tensor) -> float:
    """‖x̂ − ŷ‖², written out."""
    return ((x / x.norm() - y / y.norm()) ** 2).sum().item()


# ---- info_nce -----------------------------------------------------------------------------
def naive_info_nce(a, p, neg, kappa, mask=None) -> list[float]:
    out = []
    for i in range(len(a)):
        logits = [cos(a[i], p[i]) / kappa]
        logits += [
            cos(a[i], neg[i, k]) / kappa for k in range(neg.shape[1]) if mask is None or mask[i, k]
        ]
        logits = torch.tensor(logits, dtype=torch.float64)
        out.append((torch.logsumexp(logits, 0) - logits[0]).item())
    return out


@pytest.mark.parametrize("masked", [False, True])
def test_info_nce_matches_loop(masked):
    a, p, neg, mask = tuples()
    m = mask if masked else None
    got = info_nce(a, p, neg, 0.1, negative_mask=m)
    assert got.shape == (N,)
    torch.testing.assert_close(got, torch.tensor(naive_info_nce(a, p, neg, 0.1, m), dtype=a.dtype))


def test_info_nce_mask_equals_dropping_the_negative():
    a, p, neg, _ = tuples()
    mask = torch.ones(N, K, dtype=torch.bool)
    mask[:, 2] = False
    dropped = torch.cat([neg[:, :2], neg[:, 3:]], dim=1)
    torch.testing.assert_close(info_nce(a, p, neg, 0.5, mask), info_nce(a, p, dropped, 0.5))


def test_info_nce_no_valid_negative_is_zero_with_finite_grad():
    a, p, neg, _ = tuples()
    a.requires_grad_()
    loss = info_nce(a, p, neg, 0.1, torch.zeros(N, K, dtype=torch.bool))
    assert torch.equal(loss, torch.zeros(N, dtype=a.dtype))
    loss.sum().backward()
    assert torch.isfinite(a.grad).all()


def test_info_nce_hand_case():
    # sim(a,p) = 1, sim(a,n) = 0, κ = 1: L = −log e/(e + 1) = log(1 + 1/e)
    a = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[2.0, 0.0]])
    neg = torch.tensor([[[0.0, 3.0]]])
    torch.testing.assert_close(info_nce(a, p, neg, 1.0), torch.tensor([math.log(1 + math.e**-1)]))


def test_info_nce_checks_inputs():
    a, p, neg, mask = tuples()
    with pytest.raises(ValueError, match="negatives must be"):
        info_nce(a, p, neg[:, :, :3], 0.1)
    with pytest.raises(ValueError, match="negative_mask"):
        info_nce(a, p, neg, 0.1, mask.float())
    with pytest.raises(ValueError, match="temperature"):
        info_nce(a, p, neg, 0.0)
    with pytest.raises(TypeError, match="tensors"):
        info_nce(a, p, None, 0.1)


# ---- triplet_margin -----------------------------------------------------------------------
def hinge(a, p, n, margin) -> float:
    return max(0.0, dist(a, p) - dist(a, n) + margin)


def test_squared_distance_is_two_minus_two_cos():
    a, p, _, _ = tuples()
    torch.testing.assert_close(squared_distance(a, p), 2 - 2 * torch.cosine_similarity(a, p, dim=1))


@pytest.mark.parametrize("masked", [False, True])
def test_triplet_hardest_matches_loop(masked):
    a, p, neg, mask = tuples(seed=1)
    m = mask if masked else None
    got = triplet_margin(a, p, neg, 0.2, "hardest", negative_mask=m)
    expected = []
    for i in range(N):
        ks = [k for k in range(K) if m is None or m[i, k]]
        if not ks:
            expected.append(0.0)
            continue
        closest = min(ks, key=lambda k: dist(a[i], neg[i, k]))
        expected.append(hinge(a[i], p[i], neg[i, closest], 0.2))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=a.dtype))


@pytest.mark.parametrize("masked", [False, True])
def test_triplet_all_matches_loop(masked):
    a, p, neg, mask = tuples(seed=2)
    m = mask if masked else None
    got = triplet_margin(a, p, neg, 0.5, "all", negative_mask=m)
    expected = []
    for i in range(N):
        h = [hinge(a[i], p[i], neg[i, k], 0.5) for k in range(K) if m is None or m[i, k]]
        expected.append(sum(h) / len(h) if h else 0.0)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=a.dtype))


def test_triplet_random_picks_only_valid_negatives_uniformly():
    # negative k of every row sits at a distinct distance, so the loss tells which k was drawn
    n, k = 3, 4
    a = torch.tensor([[1.0, 0.0]]).repeat(n, 1)
    p = a.clone()
    angles = torch.tensor([0.3, 0.6, 0.9, 1.2])
    neg = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1).repeat(n, 1, 1)
    mask = torch.tensor([[True, False, True, True], [False, True, False, False], [False] * 4])
    margin = 4.0  # every hinge active: loss = margin − d(a, n_k)
    per_k = [margin - dist(a[0], neg[0, j]) for j in range(k)]
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(n, k)
    draws = 600
    for _ in range(draws):
        loss = triplet_margin(a, p, neg, margin, "random", generator=g, negative_mask=mask)
        for i in range(2):
            j = min(range(k), key=lambda j, i=i: abs(per_k[j] - loss[i].item()))
            assert abs(per_k[j] - loss[i].item()) < 1e-5
            counts[i, j] += 1
        assert loss[2] == 0  # no valid negative: no triplet
    assert torch.all(counts[:2][~mask[:2]] == 0)  # never an invalid negative
    assert counts[1, 1] == draws
    share = counts[0, mask[0]] / draws  # three valid negatives, each about 1/3
    assert torch.all((share - 1 / 3).abs() < 0.07), share


def test_triplet_random_is_deterministic_with_a_seeded_generator():
    a, p, neg, mask = tuples(seed=3)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return triplet_margin(a, p, neg, 2.0, "random", generator=g, negative_mask=mask)

    assert torch.equal(run(5), run(5))


@pytest.mark.parametrize("mining", ["hardest", "random", "all"])
def test_triplet_zero_when_constraints_hold(mining):
    # positive = anchor (d = 0); negatives orthogonal or opposite (d >= 2 > margin)
    a = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    p = 3 * a
    neg = torch.stack(
        [
            torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 2.0]]),
            torch.tensor([[1.0, 0.0, 0.0], [0.0, -5.0, 0.0], [0.0, 0.0, -1.0]]),
        ]
    )
    loss = triplet_margin(a, p, neg, 0.2, mining, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loss, torch.zeros(2))


@pytest.mark.parametrize("mining", ["hardest", "random", "all"])
def test_triplet_gradient_pulls_positive_in_and_pushes_negatives_out(mining):
    a, p, neg, _ = tuples(seed=4)
    p.requires_grad_()
    neg.requires_grad_()
    g = torch.Generator().manual_seed(0)
    loss = triplet_margin(a, p, neg, 4.0, mining, generator=g)  # margin 4: every hinge active
    assert (loss > 0).all()
    loss.sum().backward()
    unit = lambda x: x / x.norm(dim=-1, keepdim=True)  # noqa: E731
    # gradient descent moves the positive towards the anchor ...
    assert ((-p.grad * (unit(a) - unit(p.detach()))).sum(-1) > 0).all()
    # ... and every negative that received gradient away from it
    away = (-neg.grad * (unit(neg.detach()) - unit(a).unsqueeze(1))).sum(-1)
    used = neg.grad.abs().sum(-1) > 0
    assert used.any(dim=1).all()
    assert (away[used] > 0).all()


@pytest.mark.parametrize("mining", ["hardest", "random", "all"])
def test_triplet_moving_anchor_towards_positive_lowers_loss(mining):
    # the anchor turns from 45° towards the positive (x axis) in the xy-plane; the negatives
    # lie on the z axis, so d(a, n) = 2 stays fixed and only d(a, p) changes
    p = torch.tensor([[1.0, 0.0, 0.0]])
    neg = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, -2.0]]])
    a = torch.tensor([[1.0, 1.0, 0.0]], requires_grad=True)
    loss = triplet_margin(a, p, neg, 3.0, mining, generator=torch.Generator().manual_seed(0))
    loss.sum().backward()
    assert (-a.grad @ torch.tensor([1.0, -1.0, 0.0])).item() > 0  # descent turns a towards p
    closer = torch.tensor([[1.0, 0.5, 0.0]])
    g = torch.Generator().manual_seed(0)
    assert triplet_margin(closer, p, neg, 3.0, mining, generator=g).item() < loss.item()


def test_triplet_rejects_unknown_mining():
    a, p, neg, _ = tuples()
    with pytest.raises(ValueError, match="semi"):
        triplet_margin(a, p, neg, 0.2, "semi")


# ---- proxy_nca ----------------------------------------------------------------------------
def naive_proxy_nca(a, proxies, y) -> list[float]:
    out = []
    for i in range(len(a)):
        num = math.exp(-dist(a[i], proxies[y[i]]))
        den = sum(math.exp(-dist(a[i], proxies[z])) for z in range(len(proxies)) if z != y[i])
        out.append(-math.log(num / den))
    return out


def test_proxy_nca_matches_loop():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(9, 4, generator=g, dtype=torch.float64)
    proxies = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 6, (9,), generator=g)
    got = proxy_nca(a, proxies, y)
    torch.testing.assert_close(got, torch.tensor(naive_proxy_nca(a, proxies, y), dtype=a.dtype))


def test_proxy_nca_excludes_the_positive_from_the_denominator():
    # two proxies: L = d(a, p_y) − d(a, p_other), the NCA form would add log(1 + e^{...})
    a = torch.tensor([[1.0, 0.0]])
    proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(proxy_nca(a, proxies, torch.tensor([0])), torch.tensor([-2.0]))


def test_proxy_nca_minimum_when_anchor_sits_on_its_proxy_and_others_are_far():
    # a = p_y and every other proxy at −a: the lower bound log(P − 1) − 4 ("zero-ish" after
    # subtracting that constant); any other placement of the anchor scores worse
    a = torch.tensor([[0.0, 2.0]])
    proxies = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, -3.0], [0.0, -0.5]])
    best = proxy_nca(a, proxies, torch.tensor([0]))
    torch.testing.assert_close(best, torch.tensor([math.log(3) - 4.0]))
    g = torch.Generator().manual_seed(0)
    others = proxy_nca(torch.randn(50, 2, generator=g), proxies, torch.zeros(50, dtype=torch.long))
    assert (others > best).all()


def test_proxy_nca_gradient_pulls_anchor_to_its_proxy():
    a = torch.tensor([[1.0, 0.2]], requires_grad=True)
    proxies = torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    proxy_nca(a, proxies, torch.tensor([0])).sum().backward()
    assert (-a.grad @ proxies[0]).item() > 0  # descent increases similarity to p_y


def test_proxy_nca_checks_inputs():
    a = torch.randn(3, 4)
    with pytest.raises(ValueError, match="at least 2"):
        proxy_nca(a, torch.randn(1, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(P, D\)"):
        proxy_nca(a, torch.randn(5, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="positive_index"):
        proxy_nca(a, torch.randn(5, 4), torch.zeros(2, dtype=torch.long))
