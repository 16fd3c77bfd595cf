"""The wav2vec 2.0 speed cases at size "tiny": both sides run, agree where comparable, and the
two pre-training models have the same dimensions."""

from __future__ import annotations

import pytest
import torch

from bench.speed import cases_wav2vec as cw

CPU = torch.device("cpu")
PEER_MODULE = {
    cw.VQ.name: "vector_quantize_pytorch",
    cw.VQ_EMA.name: "vector_quantize_pytorch",
    cw.GUMBEL.name: "transformers",
    cw.CONTRASTIVE.name: "transformers",
    cw.SSL_STEP.name: "transformers",
}
CASES = [cw.VQ, cw.VQ_EMA, cw.GUMBEL, cw.CONTRASTIVE, cw.SSL_STEP]


def test_cases_are_registered_in_the_group_with_four_sizes():
    from bench.speed.case import CASES as REGISTERED
    from bench.speed.case import SIZES

    for case in CASES:
        assert REGISTERED[case.name] is case
        assert case.group == "wav2vec 2.0" and case.trained
        assert tuple(case.sizes) == SIZES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tiny_runs_both_sides_and_they_agree(case):
    pytest.importorskip(PEER_MODULE[case.name])
    work = case.workload("tiny", CPU)
    ours, peer = work.ours(), work.peer()
    assert work.items > 0 and work.shape
    if work.agree is not None:
        work.agree(ours, peer)
    else:
        assert case.notes  # says why there is no agreement check
        for out in (ours, peer):
            assert torch.isfinite(torch.as_tensor(out)).all()


def test_vq_agreement_check_catches_different_codes():
    pytest.importorskip("vector_quantize_pytorch")
    work = cw.VQ.workload("tiny", CPU)
    codes, q, value = work.ours()
    peer = work.peer()
    wrong_codes, wrong_q = codes.clone(), q.clone()
    wrong_codes.view(-1)[0] += 1
    wrong_q.view(-1, q.shape[-1])[0] += 1.0  # a farther vector than the nearest code
    with pytest.raises(AssertionError, match="codes differ"):
        work.agree((wrong_codes, wrong_q, value), peer)
    with pytest.raises(AssertionError, match="differ by"):
        work.agree((codes, q, value * 1.01), peer)


def test_ssl_models_have_the_same_dimensions():
    pytest.importorskip("transformers")
    ours, peer = cw.ssl_models()
    n_ours = sum(p.numel() for p in ours.parameters())
    n_peer = sum(p.numel() for p in peer.parameters())
    # the same conv encoder, Transformer, quantizer and heads; they differ only in small
    # pieces (our extra LayerNorm after the positional conv, their weight-norm gain)
    assert abs(n_ours - n_peer) <= 0.1 * n_peer, (n_ours, n_peer)
    assert len(ours.encoder.layers) == len(peer.wav2vec2.feature_extractor.conv_layers)
    assert len(ours.context.layers) == len(peer.wav2vec2.encoder.layers)
    assert ours.projection.weight.shape == peer.wav2vec2.feature_projection.projection.weight.shape
    assert ours.quantizer.codevectors.numel() == peer.quantizer.codevectors.numel()
    assert ours.head.weight.shape == peer.project_hid.weight.shape
    print(f"parameters: ours {n_ours:,}, transformers {n_peer:,}")


def test_contrastive_fast_path_has_info_nce_gradients():
    """The written-out cosine backward (made faster for these cases) matches autograd's."""
    from methods.loss_cores import info_nce
    from methods.ssl_objectives import Contrastive

    g = torch.Generator().manual_seed(0)
    n, k, d = 9, 7, 12
    c = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    neg = torch.randn(n, k, d, generator=g, dtype=torch.float64)
    neg[0, 0] = 0.0  # a zero vector: the clamped norm
    neg = neg.requires_grad_()
    mask = torch.rand(n, k, generator=g) > 0.3
    mask[1] = False  # a row without negatives
    ours = Contrastive(kappa=0.1)(c, t, neg, negative_mask=mask).loss
    grads = torch.autograd.grad(ours, (c, t, neg))
    ref = info_nce(c, t, neg, 0.1, mask).mean()
    expected = torch.autograd.grad(ref, (c, t, neg))
    torch.testing.assert_close(ours, ref)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)
    smooth = torch.randn(n, k, d, generator=g, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(  # away from the zero vector, where sim is not differentiable
        lambda c, t, neg: Contrastive(kappa=0.1)(c, t, neg, negative_mask=mask).loss,
        (c, t, smooth),
    )
