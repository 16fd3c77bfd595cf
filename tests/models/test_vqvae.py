"""Tests for bench.models.vqvae: shapes, input errors, where a code frame's centre lies,
per-utterance errors, code statistics and a tiny training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench import registry
from bench.context import RunContext
from bench.data.items import PhoneSegment, Utterance
from bench.models.vqvae import (
    CODE_HOP,
    CODE_OFFSET,
    LogMelVQVAE,
    TrainSetup,
    code_stats,
    evaluate_frames,
    standardiser,
    train_vqvae,
)


def model(name: str = "vq_ema", entries: int = 8, dim: int = 6, n_mels: int = 10) -> LogMelVQVAE:
    torch.manual_seed(0)
    params = {} if name == "none" else {"entries": entries}
    if name == "gumbel":
        params["groups"] = 1
    quantizer = registry.build("quantizer", name, params, in_dim=dim, out_dim=dim, tau_decay=0.99)
    return LogMelVQVAE(quantizer, n_mels=n_mels, hidden=12, code_dim=dim)


@pytest.mark.parametrize("frames", [20, 21])
@pytest.mark.parametrize("name", ["vq_st", "gumbel", "none"])
def test_shapes_halve_the_frame_rate_and_restore_it(name, frames):
    net = model(name).eval()
    recon, out = net(torch.randn(3, frames, 10))
    assert recon.shape == (3, 2 * (frames // 2), 10)
    assert out.codes.shape == (3, frames // 2, 1)


def test_bad_inputs_are_clear_errors():
    quantizer = registry.build("quantizer", "vq_st", {"entries": 8}, in_dim=6, out_dim=4)
    with pytest.raises(ValueError, match="in_dim = out_dim = code_dim"):
        LogMelVQVAE(quantizer, n_mels=10, hidden=12, code_dim=6)
    with pytest.raises(ValueError, match=r"\(B, T, 10\)"):
        model()(torch.randn(2, 20, 80))
    with pytest.raises(ValueError, match="at least 2 frames"):
        model()(torch.randn(2, 1, 10))


def test_code_frame_centre_is_the_frame_label_offset():
    """Code frame t depends on a window of input frames centred on 2t + 0.5 (10 ms hops of
    160 samples), i.e. sample 320 t + 80: the hop and offset given to frame_labels."""
    net = model()
    x = torch.randn(1, 40, 10, requires_grad=True)
    for t in (5, 9):
        (grad,) = torch.autograd.grad(net.encode(x)[0, t].sum(), x)
        frames = grad[0].abs().sum(1).nonzero()[:, 0]
        centre = (frames.min() + frames.max()).item() / 2
        assert centre == 2 * t + 0.5
        assert 160 * centre == CODE_HOP * t + CODE_OFFSET


def test_evaluate_frames_gives_each_utterances_squared_error_and_codes():
    net = model()
    feats = [torch.randn(13, 10), torch.randn(8, 10)]
    sq, n, codes = evaluate_frames(net, feats, torch.device("cpu"))
    assert n.tolist() == [12 * 10, 8 * 10]
    with torch.no_grad():
        recon, out = net.eval()(feats[0][None])
    expected = ((recon[0] - feats[0][:12]) ** 2).sum().item()
    assert sq[0] == pytest.approx(expected, rel=1e-6)
    assert codes[0].shape == (6, 1) and np.array_equal(codes[0], out.codes[0].numpy())


def test_standardiser_gives_zero_mean_unit_deviation_per_bin():
    feats = [torch.randn(30, 4) * 3 + 2, torch.randn(20, 4) * 3 + 2]
    mean, std = standardiser(feats)
    z = (torch.cat(feats) - mean) / std
    torch.testing.assert_close(z.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(4), atol=1e-5, rtol=0)


def test_code_stats_against_a_hand_made_alignment():
    # phones a over samples [0, 640), b over [640, 1280): code frames centred 80, 400 | 720, 1040
    utt = Utterance(
        id="u",
        path=None,  # type: ignore[arg-type]
        speaker="s",
        split="test",
        alignment=(PhoneSegment("a", 0, 640), PhoneSegment("b", 640, 1280)),
    )
    codes = [np.array([[0], [0], [1], [1]])]
    stats, counts = code_stats(codes, [utt], num_entries=4)
    assert counts == [2.0, 2.0, 0.0, 0.0]
    assert stats["code_perplexity"] == pytest.approx(2.0) and stats["code_usage"] == 0.5
    assert stats["phone_pnmi"] == pytest.approx(1.0) and stats["phone_purity"] == 1.0
    assert stats["phone_mi_bits"] == pytest.approx(1.0)


def test_tiny_training_run_records_collapse_curves(tmp_path):
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True).for_cell(0)
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn(30, 10, generator=gen) for _ in range(4)]
    net = model("vq_restart")
    setup = TrainSetup(steps=6, batch_size=2, crop_frames=8, lr=1e-3, aux_weight=1.0, eval_every=3)
    result = train_vqvae(net, feats, feats[:2], setup, ctx)
    curves = result.curves
    assert curves["step"] == [0, 3, 6]  # the untrained codebook, then every 3 steps
    assert len(curves["train_loss"]) == len(curves["train_perplexity"]) == 6
    for key in ("valid_mse", "valid_code_perplexity", "valid_code_usage"):
        assert len(curves[key]) == 3 and all(np.isfinite(curves[key])), key
    assert 1.0 <= curves["valid_code_perplexity"][-1] <= 8.0
    assert result.timing["train_samples_per_s"]
