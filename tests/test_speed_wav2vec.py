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
    codes, value = work.ours()
    wrong = codes.clone()
    wrong.view(-1)[0] += 1
    with pytest.raises(AssertionError, match="codes differ"):
        work.agree((wrong, value), work.peer())


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
