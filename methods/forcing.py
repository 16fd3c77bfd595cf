"""How an autoregressive decoder is trained: teacher forcing, scheduled sampling, professor forcing.

Every strategy is written once against the one-step decoder interface of
``bench.models.g2p`` (``teacher``, ``start``, ``step``), so the same code trains the GRU
and the Transformer decoder. A strategy is called on a batch of encoder inputs, gold
decoder inputs (``<s>`` + phonemes) and gold targets (phonemes + ``</s>``) at training
step ``i``, and returns a ``ForcingOutput``.

- ``teacher``: the decoder always sees the gold previous token (one parallel pass).
- ``scheduled_linear`` / ``scheduled_exponential`` / ``scheduled_inverse_sigmoid``:
  scheduled sampling (Bengio et al. 2015, "Scheduled Sampling for Sequence Prediction
  with Recurrent Neural Networks", Sec. 2.4): at each step and for each sequence, a coin
  with probability ε_i picks the gold previous token, else a token sampled from the
  model's own output distribution at the previous step (no gradient through the sample).
  The GRU runs the exact procedure (see ``run_decoder``: a gradient-free step loop picks
  the fed tokens, then one parallel pass); the Transformer uses the two-pass
  approximation of Mihaylova & Martins (2019, "Scheduled Sampling for Transformers"):
  samples from a teacher-forced pass, mixed with gold tokens, fed to a second pass.
- ``professor``: professor forcing (Lamb et al. 2016, "Professor Forcing: A New Algorithm
  for Training Recurrent Networks"): a discriminator (bidirectional GRU + MLP over the
  decoder's hidden-state sequence) learns to tell teacher-forced from free-running runs;
  the generator minimises the NLL plus C_f = -log D(free-running behaviour), which pulls
  free-running dynamics towards teacher-forced ones (optionally also C_t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.g2p import BOS, PAD, outputs_only
from bench.registry import register


@dataclass
class ForcingOutput:
    """What one training step of a strategy produces."""

    loss: torch.Tensor  # minimised by the model's optimiser
    nll: torch.Tensor  # mean token NLL of the gold targets (the run the loss was taken on)
    teacher_prob: float  # ε_i: probability of feeding the gold token at this step
    # professor forcing: minimised by the discriminator's own optimiser; its inputs are
    # detached, so it only reaches the discriminator. None for the other strategies.
    discriminator_loss: torch.Tensor | None = None


@dataclass
class DecoderRun:
    """A decoder run over a whole target length."""

    logits: torch.Tensor  # (B, T, V)
    hidden: torch.Tensor  # (B, T, H) pre-output states (the "behaviour")
    fed: torch.Tensor  # (B, T) the tokens the decoder saw as inputs
    sampled: torch.Tensor  # (B, T) the model's sample at each step


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the non-padding target tokens."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)


def run_decoder(
    model, memory, mask, inputs: torch.Tensor, teacher_prob: float, two_pass: bool = False
) -> DecoderRun:
    """A decoder run that, at each step t > 0, was fed the gold token ``inputs[:, t]`` with
    probability ``teacher_prob``, else the model's own sample from step t - 1 (drawn from
    its softmax, pad and <s> excluded).

    Two phases, exact for any causal decoder: a step loop without gradient picks the fed
    tokens (coin flips and samples, the sample itself being non-differentiable anyway),
    then one parallel pass over the fed tokens computes logits and states with gradient.
    A GRU's or a causal Transformer's outputs depend only on the tokens fed so far, so
    this equals stepping with gradient; it is not the two-pass approximation of
    Mihaylova & Martins (2019), whose samples come from a teacher-forced pass. The only
    difference from a single stepped run is that the loop and the pass draw different
    dropout masks.

    ``two_pass=True`` is that approximation instead (for the Transformer, whose step
    re-runs the prefix): the samples come from one teacher-forced pass, i.e. each is
    conditioned on the gold prefix rather than on the mixed one.
    """
    dec = model.decoder
    batch, steps = inputs.shape
    if two_pass:
        with torch.no_grad():
            first, _ = dec.teacher(inputs, memory, mask)
            probs = outputs_only(first.float()).softmax(-1)
            sampled_all = torch.multinomial(probs.flatten(0, 1), 1).view(batch, steps)
            gold = torch.rand(batch, steps, device=inputs.device) < teacher_prob
            gold[:, 0] = True  # <s>
            shifted = torch.cat([inputs[:, :1], sampled_all[:, :-1]], 1)
            tokens = torch.where(gold, inputs, shifted)
        logits, hidden = dec.teacher(tokens, memory, mask)
        return DecoderRun(logits, hidden, tokens, sampled_all)
    fed, sampled = [inputs[:, 0]], []  # step 0 always sees <s>
    with torch.no_grad():
        state = dec.start(memory, mask)
        for t in range(steps):
            step_logits, _, state = dec.step(fed[-1], state, memory, mask)
            probs = outputs_only(step_logits.float()).softmax(-1)
            sampled.append(torch.multinomial(probs, 1).squeeze(1))
            if t + 1 < steps:
                gold = torch.rand(batch, device=inputs.device) < teacher_prob
                fed.append(torch.where(gold, inputs[:, t + 1], sampled[-1]))
    tokens = torch.stack(fed, 1)
    logits, hidden = dec.teacher(tokens, memory, mask)
    return DecoderRun(logits, hidden, tokens, torch.stack(sampled, 1))


class ForcingStrategy(nn.Module):
    """Base class: ε_i = 1 at every step (override ``teacher_prob`` and/or ``forward``).

    Built with ``registry.build("forcing", name, **context)``; the task's context is the
    run's ``total_steps``, the decoder's ``hidden_dim``, the ``adversarial_weight`` of
    an adversarial term and a ``teacher`` factory (the distillation strategies of
    ``methods.sequence_distillation``), and each strategy declares in ``requires`` what it
    takes. A
    strategy with trainable parts of its own (a discriminator) holds them as submodules:
    the task gives ``strategy.parameters()`` their own optimiser."""

    requires: tuple[str, ...] = ("total_steps",)

    def __init__(self, total_steps: int = 1000) -> None:
        super().__init__()
        if total_steps < 1:
            raise ValueError("total_steps must be at least 1")
        self.total_steps = total_steps

    def teacher_prob(self, step: int) -> float:
        return 1.0

    def train_pairs(self, train):
        """The (word, pronunciations) pairs to train on: the gold ones (sequence-level
        distillation replaces them with a teacher's outputs)."""
        return train

    def forward(self, model, src, inputs, targets, step: int) -> ForcingOutput:
        memory, mask = model.encode(src)
        logits, _ = model.decoder.teacher(inputs, memory, mask)
        nll = token_nll(logits, targets)
        return ForcingOutput(loss=nll, nll=nll, teacher_prob=1.0)


@register("forcing", "teacher", display="Teacher forcing")
class TeacherForcing(ForcingStrategy):
    """Teacher forcing: the gold previous token at every step, in one parallel pass."""


# Bengio et al. (2015), Sec. 2.4, the three decay schedules of ε_i (i: training step).
def linear_schedule(i: int, k: float, c: float, epsilon: float) -> float:
    return max(epsilon, k - c * i)  # ε_i = max(ε, k - c i)


def exponential_schedule(i: int, k: float) -> float:
    return k**i  # ε_i = k^i, k < 1


def inverse_sigmoid_schedule(i: int, k: float) -> float:
    return k / (k + math.exp(min(i / k, 700.0)))  # ε_i = k / (k + exp(i / k)), k >= 1


class ScheduledSampling(ForcingStrategy):
    """Scheduled sampling: ``run_decoder`` with ε_i from a schedule. Non-recurrent decoders
    (the Transformer) use the two-pass approximation unless ``two_pass`` is False."""

    two_pass = True

    def forward(self, model, src, inputs, targets, step: int) -> ForcingOutput:
        eps = self.teacher_prob(step)
        memory, mask = model.encode(src)
        two_pass = self.two_pass and not model.decoder.recurrent
        run = run_decoder(model, memory, mask, inputs, eps, two_pass=two_pass)
        nll = token_nll(run.logits, targets)
        return ForcingOutput(loss=nll, nll=nll, teacher_prob=eps)


@register("forcing", "scheduled_linear", display="Scheduled sampling (linear)")
class ScheduledLinear(ScheduledSampling):
    """ε_i = max(ε, k - c i); by default c makes ε_i reach the floor ε at the last step."""

    # (name, low, high, scale): what bench.tuning searches (the floor teacher probability)
    search_space = (("epsilon", 0.0, 0.75, "linear"),)

    def __init__(self, total_steps=1000, k: float = 1.0, c: float | None = None, epsilon=0.25):
        super().__init__(total_steps)
        if not 0 <= epsilon < 1:
            raise ValueError("epsilon (the minimum teacher probability) must lie in [0, 1)")
        self.k, self.epsilon = k, epsilon
        self.c = (k - epsilon) / total_steps if c is None else c

    def teacher_prob(self, step: int) -> float:
        return linear_schedule(step, self.k, self.c, self.epsilon)


@register("forcing", "scheduled_exponential", display="Scheduled sampling (exponential)")
class ScheduledExponential(ScheduledSampling):
    """ε_i = k^i; by default k = end^(1/total_steps), so ε reaches ``end`` at the last step."""

    search_space = (("end", 0.02, 0.75, "linear"),)

    def __init__(self, total_steps=1000, k: float | None = None, end: float = 0.25):
        super().__init__(total_steps)
        self.k = end ** (1.0 / total_steps) if k is None else k
        if not 0 < self.k < 1:
            raise ValueError("k must lie in (0, 1) for the exponential schedule")

    def teacher_prob(self, step: int) -> float:
        return exponential_schedule(step, self.k)


@register("forcing", "scheduled_inverse_sigmoid", display="Scheduled sampling (inverse sigmoid)")
class ScheduledInverseSigmoid(ScheduledSampling):
    """ε_i = k / (k + exp(i/k)); by default k >= 1 solved so ε reaches ``end`` at the end."""

    search_space = (("end", 0.02, 0.75, "linear"),)

    def __init__(self, total_steps=1000, k: float | None = None, end: float = 0.25):
        super().__init__(total_steps)
        self.k = _solve_inverse_sigmoid_k(total_steps, end) if k is None else k
        if self.k < 1:
            raise ValueError("k must be at least 1 for the inverse-sigmoid schedule")

    def teacher_prob(self, step: int) -> float:
        return inverse_sigmoid_schedule(step, self.k)


def _solve_inverse_sigmoid_k(total_steps: int, end: float) -> float:
    """The k >= 1 with k / (k + exp(T/k)) = end (ε_T rises with k), by bisection."""
    lo, hi = 1.0, float(max(total_steps, 2))
    if inverse_sigmoid_schedule(total_steps, lo) >= end:
        return lo
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if inverse_sigmoid_schedule(total_steps, mid) < end else (lo, mid)
    return (lo + hi) / 2


class Discriminator(nn.Module):
    """Bidirectional GRU over a behaviour sequence, masked mean, MLP -> logit("teacher-forced")."""

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.rnn = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, behaviour: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(behaviour * valid.unsqueeze(-1))
        keep = valid.unsqueeze(-1).float()
        pooled = (out * keep).sum(1) / keep.sum(1).clamp(min=1)
        return self.mlp(pooled).squeeze(-1)


def discriminator_loss(logit_teacher: torch.Tensor, logit_free: torch.Tensor) -> torch.Tensor:
    """-log D(teacher-forced) - log(1 - D(free-running)), averaged over the batch."""
    ones, zeros = torch.ones_like(logit_teacher), torch.zeros_like(logit_free)
    return F.binary_cross_entropy_with_logits(
        logit_teacher, ones
    ) + F.binary_cross_entropy_with_logits(logit_free, zeros)


def generator_loss(logit_free: torch.Tensor) -> torch.Tensor:
    """C_f = -log D(free-running): small when free-running behaviour looks teacher-forced."""
    return F.binary_cross_entropy_with_logits(logit_free, torch.ones_like(logit_free))


@register("forcing", "professor", display="Professor forcing")
class ProfessorForcing(ForcingStrategy):
    """NLL (teacher-forced) + adversarial_weight * C_f (+ C_t = -log(1 - D(teacher-forced))
    if asked).

    The free-running run samples its own previous tokens for as many steps as the gold
    target has, so both behaviour sequences have the same length and padding.
    """

    requires = ("total_steps", "hidden_dim", "adversarial_weight")
    # the weight is context (the task sets it); bench.tuning searches it like a parameter
    search_space = (("adversarial_weight", 0.01, 1.0, "log"),)

    def __init__(
        self,
        total_steps: int = 1000,
        hidden_dim: int = 128,
        adversarial_weight: float = 1.0,
        disc_hidden: int = 64,
        teacher_term: bool = False,
    ) -> None:
        super().__init__(total_steps)
        self.discriminator = Discriminator(hidden_dim, disc_hidden)
        self.weight, self.teacher_term = adversarial_weight, teacher_term

    def forward(self, model, src, inputs, targets, step: int) -> ForcingOutput:
        memory, mask = model.encode(src)
        logits, h_teacher = model.decoder.teacher(inputs, memory, mask)
        nll = token_nll(logits, targets)
        free = run_decoder(model, memory, mask, inputs, teacher_prob=0.0)
        valid = targets.ne(PAD)
        d_loss = discriminator_loss(
            self.discriminator(h_teacher.detach(), valid),
            self.discriminator(free.hidden.detach(), valid),
        )
        adversarial = generator_loss(self.discriminator(free.hidden, valid))
        if self.teacher_term:  # C_t: teacher-forced behaviour towards free-running
            logit_t = self.discriminator(h_teacher, valid)
            adversarial = adversarial + F.binary_cross_entropy_with_logits(
                logit_t, torch.zeros_like(logit_t)
            )
        return ForcingOutput(
            loss=nll + self.weight * adversarial,
            nll=nll,
            teacher_prob=1.0,
            discriminator_loss=d_loss,
        )


__all__ = ["BOS", "ForcingOutput", "ForcingStrategy", "run_decoder", "token_nll"]
