"""The wav2vec-style network: every quantizer x objective pair trains end to end."""

import pytest
import torch

from bench import registry
from bench.models.wav2vec import Wav2Vec
from bench.models.wav2vec_config import config_for
from bench.tasks.ssl_phoneme import PRETRAINED
from methods.ema_teacher import EMATeacher, ema_decay

registry.load_all()


def _network(quantizer: str, objective: str, **overrides) -> Wav2Vec:
    return Wav2Vec(
        config_for("tiny", **overrides), None if quantizer == "-" else quantizer, objective
    )


@pytest.mark.parametrize("stem", ["conv", "logmel"])
@pytest.mark.parametrize(("quantizer", "objective"), PRETRAINED)
def test_loss_is_finite_and_gradients_reach_the_first_learned_layer(quantizer, objective, stem):
    torch.manual_seed(0)
    model = _network(quantizer, objective, stem=stem)
    wav = 0.1 * torch.randn(2, 8000)
    out = model(wav, torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    first = model.encoder.layers[0][0].weight if stem == "conv" else model.projection.weight
    assert first.grad is not None and first.grad.abs().sum() > 0
    if model.quantizer is not None and quantizer != "none":
        assert out.codes.shape[1] == model.quantizer.num_groups


@pytest.mark.parametrize(("stem", "frames", "stem_dim"), [("conv", 49, 16), ("logmel", 50, 160)])
def test_frames_and_representations(stem, frames, stem_dim):
    model = _network("gumbel", "contrastive", stem=stem).eval()
    reps = model.representations(torch.randn(1, 16000))
    # 20 ms frames: (16000 - 400) / 320 + 1 for the conv encoder; (16000 / 160 + 1) // 2
    assert model.frames(16000) == frames
    assert reps["context"].shape == (1, frames, model.config.dim)
    assert reps["stem"].shape == (1, frames, stem_dim)
    assert list(reps) == ["stem", "input", "layer1", "context"]  # tiny: 2 blocks


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


def _no_dropout(quantizer: str, objective: str, **overrides) -> Wav2Vec:
    off = {"dropout": 0.0, "attention_dropout": 0.0, "dropout_input": 0.0, "dropout_features": 0.0}
    return _network(quantizer, objective, **{**off, **overrides})


def test_distractors_equal_to_the_positive_are_masked():
    """A collapsed codebook makes every distractor equal its positive: fairseq and
    transformers give such a logit -inf, so nothing is left to contrast (loss 0,
    accuracy 1); without the mask the loss sat at ln(K + 1)."""
    torch.manual_seed(0)
    model = _no_dropout("vq", "contrastive", stem="logmel")
    with torch.no_grad():  # one codebook entry far nearer than all others: every code is 0
        model.quantizer.codebook.zero_()
        model.quantizer.codebook[:, 1:] += 1e3
    out = model(0.1 * torch.randn(2, 16000), torch.Generator().manual_seed(0))
    assert bool((out.codes == 0).all())
    assert out.objective_loss.item() == 0.0
    assert out.accuracy.item() == 1.0


def test_data2vec_targets_are_the_ffn_outputs_before_the_last_residual():
    """data2vec §3.3: the teacher averages each top block's FFN output before the last
    residual connection. Zeroing those FFNs' last layers must zero the targets; targets
    taken from the residual stream would still carry the input projection."""
    torch.manual_seed(0)
    model = _network("-", "data2vec", stem="logmel", data2vec_top_k=2)
    teacher = model.teacher.network
    with torch.no_grad():
        for block in teacher.layers[-2:]:
            block.ffn[3].weight.zero_()
            block.ffn[3].bias.zero_()
    x = model.projection(model.features(0.1 * torch.randn(2, 16000)))
    assert model.teacher(x).abs().max().item() == 0.0
    assert teacher.run(x).hidden[-1].abs().max().item() > 0.1  # the stream is not zero


def test_padded_frames_change_nothing_for_the_real_ones():
    """With the padding mask, how much zero padding follows an utterance does not change
    its context: padded frames are never attended to and are zero for the position conv."""
    torch.manual_seed(0)
    model = _network("gumbel", "contrastive", stem="logmel").eval()
    wav = 0.1 * torch.randn(6400)  # 20 frames
    short = torch.nn.functional.pad(wav, (0, 3200)).unsqueeze(0)
    long = torch.nn.functional.pad(wav, (0, 16000)).unsqueeze(0)
    real = model.frames(6400)
    with torch.no_grad():
        a, pad_a = model.encode(short, [6400])
        b, pad_b = model.encode(long, [6400])
        unmasked = model.context(model.projection(model.features(long)))
    assert pad_a is not None and int((~pad_a).sum()) == real
    assert torch.allclose(a[0, :real], b[0, :real], atol=1e-5)
    assert not torch.allclose(unmasked[0, :real], b[0, :real], atol=1e-3)


def test_feature_penalty_is_the_mean_square_of_a_learned_encoder_only():
    wav = 0.1 * torch.randn(2, 8000)
    for stem in ("conv", "logmel"):
        losses = []
        for weight in (0.0, 10.0):
            torch.manual_seed(0)
            model = _no_dropout("vq", "contrastive", stem=stem, feature_penalty=weight)
            losses.append(model(wav, torch.Generator().manual_seed(0)).loss.item())
        torch.manual_seed(0)
        model = _no_dropout("vq", "contrastive", stem=stem)
        penalty = model.stem_features(wav).pow(2).mean().item()
        expected = 10.0 * penalty if stem == "conv" else 0.0
        assert losses[1] - losses[0] == pytest.approx(expected, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("field", ["dropout_input", "dropout_features"])
def test_input_and_feature_dropout_act_in_training(field):
    wav = 0.1 * torch.randn(2, 8000)
    for p, same in ((0.0, True), (0.5, False)):
        torch.manual_seed(0)
        model = _no_dropout("vq", "contrastive", stem="logmel", **{field: p})
        a = model(wav, torch.Generator().manual_seed(0)).loss.item()
        b = model(wav, torch.Generator().manual_seed(0)).loss.item()
        assert (a == b) is same, (field, p)
    assert getattr(config_for("small"), field) == 0.1  # fairseq's default


def test_a_frozen_quantizer_reads_features_without_learned_norm_or_dropout():
    torch.manual_seed(0)
    model = _network("random_projection", "code_prediction", stem="logmel")
    wav = 0.1 * torch.randn(1, 8000)
    before = model.codes(wav)
    with torch.no_grad():
        model.feature_norm.weight.mul_(-3.0)  # training the learned norm must not move codes
    model.train()
    assert torch.equal(model.codes(wav), before)
