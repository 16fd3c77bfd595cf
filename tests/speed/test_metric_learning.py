"""The metric-learning speed cases at size "tiny": both sides run, give the same loss, and
back-propagate the same gradients into the embeddings (and the proxies)."""

from __future__ import annotations

import pytest
import torch

from bench.speed import cases_metric_learning as cm

CPU = torch.device("cpu")
CASES = [cm.TRIPLET_ALL, cm.TRIPLET_HARD, cm.PROXY_ANCHOR, cm.NTXENT]
PAIRS = {
    cm.TRIPLET_ALL.name: cm.triplet_all,
    cm.TRIPLET_HARD.name: cm.triplet_hard,
    cm.PROXY_ANCHOR.name: cm.proxy_anchor,
    cm.NTXENT.name: cm.ntxent,
}


@pytest.fixture
def pml():
    return pytest.importorskip(
        "pytorch_metric_learning",
        reason="pytorch-metric-learning is not installed (pip install -e '.[dev]')",
    )


def test_cases_are_registered_in_the_group_with_four_growing_sizes():
    from bench.speed.case import CASES as REGISTERED
    from bench.speed.case import SIZES

    for case in CASES:
        assert REGISTERED[case.name] is case
        assert case.group == "metric learning" and case.trained
        assert tuple(case.sizes) == SIZES
        batches = [case.sizes[s]["batch"] for s in SIZES]
        assert batches == sorted(set(batches))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tiny_runs_both_sides_and_they_agree(pml, case):
    work = case.workload("tiny", CPU)
    ours, peer = work.ours(), work.peer()
    assert work.items == case.sizes["tiny"]["batch"] and work.shape
    assert ours.dim() == 0 and float(ours) > 0
    work.agree(ours, peer)
    # a second call starts from cleared grads and gives the same loss
    work.agree(work.ours(), ours)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tiny_gradients_agree_with_pml(pml, case):
    pair = PAIRS[case.name](CPU, **case.sizes["tiny"])
    work = pair.workload()
    work.ours()
    ours = [g.grad.clone() for g in pair.grads_ours]
    work.peer()
    peer = [g.grad.clone() for g in pair.grads_peer]
    assert len(ours) == len(peer)
    for mine, theirs in zip(ours, peer, strict=True):
        assert mine.abs().max() > 0
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-4 * float(theirs.abs().max()))
    # the embeddings are shared: each call replaced, not accumulated into, their gradient
    work.ours()
    torch.testing.assert_close(pair.grads_ours[0].grad, ours[0])


def test_a_missing_peer_is_reported_with_its_pip_name(monkeypatch):
    import importlib

    from bench.speed.case import PeerMissing

    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name.startswith("pytorch_metric_learning"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(PeerMissing, match="pip install pytorch-metric-learning"):
        cm.TRIPLET_ALL.workload("tiny", CPU)


@pytest.mark.parametrize("keep", [0.02, 0.1, 0.5, 1.0])
def test_triplet_loss_paths_give_the_loop_value(keep):
    """TripletLoss picks rows of x, entries of the distance matrix or its rows by how many
    triplets there are; each gives the mean over the triplets, and the share of active ones."""
    from methods.loss_cores import squared_distance
    from methods.metric_losses import TripletLoss, Tuples, all_tuples

    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 5, generator=g, dtype=torch.float64)
    y = torch.arange(6).repeat_interleave(4)
    t = all_tuples(y)
    mask = t.negative_mask & (torch.rand(t.negative_mask.shape, generator=g) < keep)
    want = [
        float(squared_distance(x[a], x[p]) - squared_distance(x[a], x[n]) + 0.5)
        for r, (a, p) in enumerate(zip(t.anchor.tolist(), t.positive.tolist(), strict=True))
        for n in mask[r].nonzero().flatten().tolist()
    ]
    out = TripletLoss(margin=0.5)(x, y, Tuples(t.anchor, t.positive, mask))
    hinge = torch.tensor(want, dtype=torch.float64).clamp(min=0)
    assert out.loss.item() == pytest.approx(hinge.mean().item(), rel=1e-9)
    assert out.active == pytest.approx((hinge > 0).double().mean().item())
