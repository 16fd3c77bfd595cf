"""Word- and sequence-level knowledge distillation (Kim & Rush 2016) and the batched beam
search that makes the teacher's outputs."""

import math

import pytest
import torch

from bench import harness, registry
from bench.models.g2p import (
    BOS,
    EOS,
    PAD,
    ModelConfig,
    Seq2Seq,
    beam_decode,
    max_output_len,
    pad_batch,
)
from bench.models.g2p_teacher import Teacher, beam_decode_batch, teacher_model_config
from methods.distillation import kd_loss
from methods.forcing import token_nll
from methods.sequence_distillation import word_kd_loss


def _softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def test_word_kd_loss_matches_its_formula_on_a_hand_case():
    student = torch.tensor([[[1.0, 0.0, -1.0], [0.5, 0.5, 0.0], [3.0, 0.0, 0.0]]])
    teacher = torch.tensor([[[0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 9.0]]])
    targets = torch.tensor([[1, 2, PAD]])  # the third step is padding: left out
    alpha = 0.3
    loss, nll = word_kd_loss(student, teacher, targets, alpha)
    p = [_softmax(r) for r in student[0].tolist()[:2]]
    q = [_softmax(r) for r in teacher[0].tolist()[:2]]
    want_nll = -(math.log(p[0][1]) + math.log(p[1][2])) / 2
    want_ce = (
        -sum(qk * math.log(pk) for j in range(2) for qk, pk in zip(q[j], p[j], strict=True)) / 2
    )
    assert nll.item() == pytest.approx(want_nll, rel=1e-6)
    assert loss.item() == pytest.approx((1 - alpha) * want_nll + alpha * want_ce, rel=1e-6)
    # alpha 0 is teacher forcing's loss; alpha 1 is the cross-entropy to the teacher alone
    assert word_kd_loss(student, teacher, targets, 0.0)[0].item() == pytest.approx(want_nll)
    assert word_kd_loss(student, teacher, targets, 1.0)[0].item() == pytest.approx(want_ce)
    with pytest.raises(ValueError, match="differ"):
        word_kd_loss(student, teacher[:, :2], targets, alpha)


def test_word_kd_gradient_is_p_minus_the_mixed_target_and_matches_hinton_kd_at_t1():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(2, 4, 6, generator=g, requires_grad=True)
    teacher = torch.randn(2, 4, 6, generator=g)
    targets = torch.randint(3, 6, (2, 4), generator=g)
    targets[1, 2:] = PAD
    alpha = 0.5
    word_kd_loss(student, teacher, targets, alpha)[0].backward()
    valid = targets.ne(PAD)
    n = int(valid.sum())
    p, q = student.detach().softmax(-1), teacher.softmax(-1)
    onehot = torch.nn.functional.one_hot(targets, 6).float()
    want = ((1 - alpha) * (p - onehot) + alpha * (p - q)) / n * valid.unsqueeze(-1)
    assert torch.allclose(student.grad, want, atol=1e-6)
    assert student.grad[1, 2:].abs().max() == 0  # padding steps get nothing
    # the same gradient as Hinton et al.'s KD loss over the valid tokens at T = 1 (the two
    # losses differ by α·H(q), a constant)
    flat = student.detach()[valid].clone().requires_grad_(True)
    kd_loss(flat, targets[valid], teacher[valid], temperature=1.0, alpha=alpha).backward()
    assert torch.allclose(student.grad[valid], flat.grad, atol=1e-6)


def _tiny(arch: str, hidden: int = 16, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, emb_dim=8, hidden=hidden, layers=1, heads=2, ff_dim=16)
    return Seq2Seq(9, 8, cfg).eval()


def _copy_model(arch: str, steps: int = 20) -> Seq2Seq:
    """A tiny model trained briefly on a letter-mapping task: its outputs end with </s> at
    various lengths and its beams disagree (an untrained one stops at once)."""
    model = _tiny(arch).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(2)
    for _ in range(steps):
        lengths = torch.randint(1, 7, (32,), generator=g).tolist()
        words = [torch.randint(3, 9, (n,), generator=g).tolist() for n in lengths]
        tgt = pad_batch([[(s % 5) + 3 for s in w] + [EOS] for w in words])
        inputs = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], 1)
        inputs = inputs.masked_fill(inputs.eq(EOS) & tgt.eq(PAD), PAD)
        loss = token_nll(model.decoder.teacher(inputs, *model.encode(pad_batch(words)))[0], tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_batched_beam_search_gives_the_per_word_beam_search_outputs(arch):
    with harness.torch_threads(1):
        trained = _copy_model(arch)
        endless = _tiny(arch, seed=1)
        with torch.no_grad():  # never ends: every output runs to its length limit
            endless.decoder.out.bias[EOS] -= 2.5
        g = torch.Generator().manual_seed(1)
        lengths = torch.randint(1, 8, (12,), generator=g).tolist()
        words = [torch.randint(3, 9, (n,), generator=g).tolist() for n in lengths]
        limits = [max_output_len("x" * len(w)) for w in words]
        seen = set()
        for model in (trained, endless):
            for width in (1, 3):
                batched = beam_decode_batch(model, pad_batch(words), width, limits)
                single = [
                    beam_decode(model, torch.tensor([w]), width, m)
                    for w, m in zip(words, limits, strict=True)
                ]
                assert batched == single, (width, batched, single)
                seen |= {len(out) for out in batched}
    assert len(seen) > 4, seen  # outputs of several lengths, some at the limit: a real check
    assert set(limits) <= seen


def test_distillation_strategies_take_a_teacher_and_keep_it_out_of_their_parameters():
    student, big = _tiny("gru"), _tiny("gru", hidden=32)
    teacher = Teacher(big, {"ab": ("X",)}, [], [])
    calls = []

    def factory():
        calls.append(1)
        return teacher

    context = {"total_steps": 10, "hidden_dim": 16, "adversarial_weight": 1.0}
    word = registry.build("forcing", "word_kd", teacher=factory, **context)
    seq = registry.build("forcing", "sequence_kd", teacher=factory, **context)
    assert calls == [1, 1] and word.alpha == 0.5 and list(word.parameters()) == []
    assert seq.train_pairs([("ab", [("Y", "Z")])]) == [("ab", [("X",)])]
    with pytest.raises(ValueError, match="no output for 1 training words"):
        seq.train_pairs([("cd", [("Y",)])])
    # word_kd's loss at alpha 1 is the cross-entropy to the teacher's distribution under
    # the gold prefix; the teacher gets no gradient
    src = torch.tensor([[3, 4, 5], [6, 7, PAD]])
    tgt = torch.tensor([[3, 4, 2], [5, 2, PAD]])
    inputs = torch.tensor([[1, 3, 4], [1, 5, PAD]])
    strict = registry.build("forcing", "word_kd", params={"alpha": 1.0}, teacher=factory, **context)
    out = strict(student, src, inputs, tgt, step=0)
    t_logits = big.decoder.teacher(inputs, *big.encode(src))[0]
    s_logits = student.decoder.teacher(inputs, *student.encode(src))[0]
    assert out.loss.item() == pytest.approx(word_kd_loss(s_logits, t_logits, tgt, 1.0)[0].item())
    assert out.nll.item() == pytest.approx(token_nll(s_logits, tgt).item())
    out.loss.backward()
    assert all(p.grad is None for p in big.parameters())
    with pytest.raises(ValueError, match="alpha=2"):
        registry.build("forcing", "word_kd", params={"alpha": 2}, teacher=factory, **context)
    with pytest.raises(ValueError, match="needs a teacher"):
        registry.build("forcing", "word_kd", teacher=None, **context)


def test_a_teacher_narrower_than_its_student_is_an_input_error():
    student = ModelConfig(hidden=128, ff_dim=256)
    assert teacher_model_config(student, 256).ff_dim == 512
    with pytest.raises(ValueError, match="teacher_hidden=64 is smaller than the student"):
        teacher_model_config(student, 64)
