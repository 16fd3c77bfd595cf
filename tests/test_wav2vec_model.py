"""The wav2vec-style network: every quantizer x objective pair trains end to end."""

import pytest
import torch

from bench import registry
from bench.models.wav2vec import Wav2Vec, config_for
from bench.tasks.ssl_phoneme import PRETRAINED

registry.load_all()


@pytest.mark.parametrize(("quantizer", "objective"), PRETRAINED)
def test_loss_is_finite_and_gradients_reach_the_feature_encoder(quantizer, objective):
    torch.manual_seed(0)
    model = Wav2Vec(config_for("tiny"), quantizer, objective)
    wav = 0.1 * torch.randn(2, 8000)
    out = model(wav, torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    first_conv = model.encoder.layers[0][0].weight
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
    if model.quantizer is not None and quantizer != "none":
        assert out.codes.shape[1] == model.quantizer.num_groups


def test_frames_and_representations():
    model = Wav2Vec(config_for("tiny"), "gumbel", "contrastive").eval()
    wav = torch.randn(1, 16000)
    reps = model.representations(wav)
    frames = model.encoder.frames(16000)
    assert frames == 49  # 20 ms frames: (16000 - 400) / 320 + 1
    assert reps["context"].shape == (1, frames, model.config.dim)
    assert reps["encoder"].shape == (1, frames, model.config.conv_channels)
    assert "layer1" in reps


def test_data2vec_teacher_follows_the_student_by_ema():
    torch.manual_seed(0)
    model = Wav2Vec(config_for("tiny"), "none", "data2vec")
    assert all(not p.requires_grad for p in model.teacher.parameters())
    with torch.no_grad():
        for p in model.context.parameters():
            p.add_(1.0)  # move the student away from the teacher
    before = [p.clone() for p in model.teacher.parameters()]
    decay = model.update_teacher(1)
    assert 0.9 < decay < 1
    for b, t, s in zip(before, model.teacher.parameters(), model.context.parameters(), strict=True):
        expected = decay * b + (1 - decay) * s
        assert torch.allclose(t, expected, atol=1e-6)


def test_gumbel_temperature_is_annealed_by_the_model():
    model = Wav2Vec(
        config_for("tiny"), "gumbel", "contrastive", quantizer_kwargs={"tau_decay": 0.9}
    )
    model.anneal(5)
    assert model.quantizer.tau == pytest.approx(max(2.0 * 0.9**5, 0.5))
