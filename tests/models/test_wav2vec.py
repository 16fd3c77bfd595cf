"""The wav2vec-style network: every quantizer x objective pair trains end to end."""

import pytest
import torch

from bench import registry
from bench.models.wav2vec import Wav2Vec, config_for
from bench.tasks.ssl_phoneme import PRETRAINED
from methods.ema_teacher import EMATeacher, ema_decay

registry.load_all()


def _network(quantizer: str, objective: str, **overrides) -> Wav2Vec:
    return Wav2Vec(
        config_for("tiny", **overrides), None if quantizer == "-" else quantizer, objective
    )


@pytest.mark.parametrize(("quantizer", "objective"), PRETRAINED)
def test_loss_is_finite_and_gradients_reach_the_feature_encoder(quantizer, objective):
    torch.manual_seed(0)
    model = _network(quantizer, objective)
    wav = 0.1 * torch.randn(2, 8000)
    out = model(wav, torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    first_conv = model.encoder.layers[0][0].weight
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
    if model.quantizer is not None and quantizer != "none":
        assert out.codes.shape[1] == model.quantizer.num_groups


def test_frames_and_representations():
    model = _network("gumbel", "contrastive").eval()
    wav = torch.randn(1, 16000)
    reps = model.representations(wav)
    frames = model.encoder.frames(16000)
    assert frames == 49  # 20 ms frames: (16000 - 400) / 320 + 1
    assert reps["context"].shape == (1, frames, model.config.dim)
    assert reps["encoder"].shape == (1, frames, model.config.conv_channels)
    assert "layer1" in reps


def test_data2vec_owns_a_teacher_that_follows_the_student_by_ema():
    torch.manual_seed(0)
    model = _network("-", "data2vec")
    assert (
        isinstance(model.objective.teacher, EMATeacher) and model.teacher is model.objective.teacher
    )
    assert model.quantizer is None and model.head.out_features == model.config.dim
    assert all(not p.requires_grad for p in model.teacher.parameters())
    with torch.no_grad():
        for p in model.context.parameters():
            p.add_(1.0)  # move the student away from the teacher
    before = [p.clone() for p in model.teacher.parameters()]
    model.anneal(1)  # the model's per-update step moves the teacher
    cfg = model.config
    decay = ema_decay(1, cfg.ema_tau0, cfg.ema_tau_end, cfg.ema_tau_steps)
    assert 0.9 < decay < 1
    for b, t, s in zip(before, model.teacher.parameters(), model.context.parameters(), strict=True):
        assert torch.allclose(t, decay * b + (1 - decay) * s, atol=1e-6)


def test_a_teacher_objective_takes_no_quantizer_and_others_need_one():
    with pytest.raises(ValueError, match="takes no quantizer"):
        _network("gumbel", "data2vec")
    with pytest.raises(ValueError, match="needs a quantizer"):
        _network("-", "contrastive")


def test_gumbel_temperature_is_annealed_by_the_model():
    model = _network("gumbel", "contrastive", tau_decay=0.9)
    model.anneal(5)
    assert model.quantizer.tau == pytest.approx(max(2.0 * 0.9**5, 0.5))
