"""Forcing strategies: schedules against their formulas, the ε extremes, professor forcing."""

import math

import pytest
import torch

from bench import registry
from bench.models.g2p import BOS, EOS, ModelConfig, Seq2Seq, beam_decode, greedy_decode
from methods import forcing


def _model(arch: str, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, emb_dim=8, hidden=16, layers=1, heads=2, ff_dim=16)
    return Seq2Seq(12, 10, cfg).eval()


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, 12, (4, 5), generator=g)
    src[0, 3:] = 0  # a padded word
    tgt = torch.randint(3, 10, (4, 6), generator=g)
    tgt[:, -1] = EOS
    tgt[1, 4:] = 0
    tgt[1, 3] = EOS
    inputs = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], 1)
    return src, inputs, tgt


def build(name: str, **context) -> forcing.ForcingStrategy:
    """``name`` built as the g2p task builds it: the family's whole context."""
    context = {"total_steps": 10, "hidden_dim": 16, "adversarial_weight": 1.0, **context}
    return registry.build("forcing", name, **context)


def test_strategies_take_what_they_declare_from_the_context():
    assert list(build("teacher").parameters()) == []
    assert build("scheduled_exponential").teacher_prob(10) == pytest.approx(0.25)
    professor = build("professor", adversarial_weight=0.1)
    assert professor.weight == 0.1 and professor.total_steps == 10
    # its discriminator is its parameters (the task gives them their own optimiser)
    assert list(professor.parameters()) == list(professor.discriminator.parameters()) != []
    assert professor.discriminator.rnn.input_size == 16  # the decoder's hidden size
    with pytest.raises(registry.ContextError, match="unknown context"):
        registry.build("forcing", "teacher", total_steps=10, hidden=16)


def test_every_strategy_is_registered():
    assert set(registry.names("forcing")) >= {
        "teacher",
        "scheduled_linear",
        "scheduled_exponential",
        "scheduled_inverse_sigmoid",
        "professor",
    }


@pytest.mark.parametrize(
    ("i", "expected"), [(0, 1.0), (10, 0.5), (15, 0.25), (16, 0.2), (1000, 0.2)]
)
def test_linear_schedule_formula(i, expected):
    s = forcing.ScheduledLinear(total_steps=100, k=1.0, c=0.05, epsilon=0.2)
    assert s.teacher_prob(i) == pytest.approx(max(0.2, 1.0 - 0.05 * i)) == pytest.approx(expected)


@pytest.mark.parametrize("i", [0, 1, 3, 50])
def test_exponential_schedule_formula(i):
    s = forcing.ScheduledExponential(total_steps=100, k=0.9)
    assert s.teacher_prob(i) == pytest.approx(0.9**i)
    assert forcing.ScheduledExponential(total_steps=3, k=0.9).teacher_prob(3) == pytest.approx(
        0.729
    )


@pytest.mark.parametrize("i", [0, 10, 20, 100])
def test_inverse_sigmoid_schedule_formula(i):
    s = forcing.ScheduledInverseSigmoid(total_steps=100, k=10.0)
    assert s.teacher_prob(i) == pytest.approx(10.0 / (10.0 + math.exp(i / 10.0)))
    assert s.teacher_prob(0) == pytest.approx(10 / 11)


def test_default_constants_reach_the_end_value_at_the_last_step():
    assert forcing.ScheduledLinear(total_steps=200).teacher_prob(200) == pytest.approx(0.25)
    assert forcing.ScheduledExponential(total_steps=200).teacher_prob(200) == pytest.approx(0.25)
    inv = forcing.ScheduledInverseSigmoid(total_steps=200)
    assert inv.k >= 1 and inv.teacher_prob(200) == pytest.approx(0.25, abs=1e-6)
    for cls in (forcing.ScheduledLinear, forcing.ScheduledExponential):
        eps = [cls(total_steps=50).teacher_prob(i) for i in range(51)]
        assert eps[0] == pytest.approx(1.0) and all(
            a >= b for a, b in zip(eps[:-1], eps[1:], strict=True)
        )


@pytest.mark.parametrize("arch", ["gru", "transformer"])
@pytest.mark.parametrize("name", ["scheduled_linear", "scheduled_inverse_sigmoid"])
def test_scheduled_sampling_with_eps_one_is_teacher_forcing(arch, name):
    model = _model(arch)
    src, inputs, tgt = _batch()
    teacher = build("teacher")(model, src, inputs, tgt, 0)
    ss = build(name)
    ss.teacher_prob = lambda step: 1.0  # ε = 1
    out = ss(model, src, inputs, tgt, 0)
    assert out.teacher_prob == 1.0
    assert out.loss.item() == pytest.approx(teacher.loss.item(), abs=1e-6)


@pytest.mark.parametrize("arch", ["gru", "transformer"])
@pytest.mark.parametrize("two_pass", [False, True])
def test_eps_zero_feeds_only_model_samples(arch, two_pass):
    model = _model(arch)
    src, inputs, _ = _batch()
    memory, mask = model.encode(src)
    run = forcing.run_decoder(model, memory, mask, inputs, 0.0, two_pass=two_pass)
    assert torch.equal(run.fed[:, 0], inputs[:, 0])  # <s>
    assert torch.equal(run.fed[:, 1:], run.sampled[:, :-1])
    assert not torch.equal(run.fed, inputs)
    gold = forcing.run_decoder(model, memory, mask, inputs, 1.0, two_pass=two_pass)
    assert torch.equal(gold.fed, inputs)


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_parallel_pass_equals_stepping_the_fed_tokens(arch):
    """The exact run_decoder relies on it: outputs depend only on the tokens fed so far."""
    model = _model(arch)
    src, inputs, _ = _batch()
    memory, mask = model.encode(src)
    run = forcing.run_decoder(model, memory, mask, inputs, 0.5)
    state, stepped = model.decoder.start(memory, mask), []
    for t in range(inputs.size(1)):
        logits, _, state = model.decoder.step(run.fed[:, t], state, memory, mask)
        stepped.append(logits)
    assert torch.allclose(torch.stack(stepped, 1), run.logits, atol=1e-5)


def test_professor_losses_have_the_right_sign():
    confident = torch.tensor([4.0, 4.0]), torch.tensor([-4.0, -4.0])  # D right on both
    fooled = torch.tensor([-4.0, -4.0]), torch.tensor([4.0, 4.0])
    assert forcing.discriminator_loss(*confident) < 0.1 < forcing.discriminator_loss(*fooled)
    # C_f = -log D(free): large when D sees the free run as free, small when it is fooled
    assert (
        forcing.generator_loss(torch.tensor([4.0]))
        < 0.1
        < forcing.generator_loss(torch.tensor([-4.0]))
    )


def test_generator_term_falls_when_free_running_states_equal_teacher_forced():
    torch.manual_seed(0)
    disc = forcing.Discriminator(dim=4, hidden=8)
    opt = torch.optim.Adam(disc.parameters(), lr=2e-2)
    valid = torch.ones(8, 5, dtype=torch.bool)
    teacher_states = torch.ones(8, 5, 4) + 0.1 * torch.randn(8, 5, 4)
    free_states = -torch.ones(8, 5, 4) + 0.1 * torch.randn(8, 5, 4)
    for _ in range(60):
        loss = forcing.discriminator_loss(disc(teacher_states, valid), disc(free_states, valid))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1  # it learnt teacher-forced vs free-running
    apart = forcing.generator_loss(disc(free_states, valid))
    matched = forcing.generator_loss(disc(teacher_states, valid))
    assert matched < 0.1 < apart


def test_professor_forcing_changes_the_generator_gradient_only_through_its_term():
    src, inputs, tgt = _batch()
    grads = {}
    for weight in (0.0, 1.0):
        model = _model("gru").train()
        torch.manual_seed(1)
        strategy = build("professor", adversarial_weight=weight)
        out = strategy(model, src, inputs, tgt, 0)
        assert out.discriminator_loss is not None and out.discriminator_loss.requires_grad
        out.loss.backward()
        grads[weight] = torch.cat([p.grad.flatten() for p in model.parameters()])
        # the discriminator loss sees both runs detached: it reaches only the discriminator
        model.zero_grad()
        out.discriminator_loss.backward()
        assert all(p.grad is None or not p.grad.any() for p in model.parameters())
        assert any(p.grad.abs().sum() > 0 for p in strategy.discriminator.parameters())
    assert not torch.allclose(grads[0.0], grads[1.0])


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_beam_width_one_is_greedy(arch):
    model = _model(arch, seed=3)
    src, _, _ = _batch(seed=5)
    greedy = greedy_decode(model, src, max_len=8)
    for k in range(len(src)):
        word = src[k : k + 1, : int(src[k].ne(0).sum())]
        assert beam_decode(model, word, width=1, max_len=8) == greedy_decode(model, word, 8)[0]
    assert len(greedy) == len(src)
