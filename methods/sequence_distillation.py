"""Knowledge distillation of a sequence model (Kim & Rush 2016, "Sequence-Level Knowledge
Distillation", EMNLP), as two forcing strategies (family "forcing").

A smaller student learns from a larger, trained teacher (``bench.models.g2p_teacher``):

- ``word_kd`` (§3.1, word-level): the student is teacher-forced on the gold targets and
  matches, at every step j, the teacher's distribution q(· | s, t_<j) under the same gold
  prefix:

      L = (1 − α) · L_NLL + α · L_WORD-KD,
      L_WORD-KD = − Σ_j Σ_k q(t_j = k | s, t_<j) · log p(t_j = k | s, t_<j),

  the cross-entropy from q to the student's p (the KL up to the teacher's entropy, a
  constant, so the same gradient: p − q per token), at temperature 1 as in the paper. Both
  terms are averaged over the same non-padding tokens. α = 0.5: the paper's experiments
  (§5) report trying α ∈ {0.5, 0.9} and keeping 0.5; quoted from memory of the paper's
  text, not checked against a copy here.
- ``sequence_kd`` (§3.2, sequence-level): the student is trained with teacher forcing on
  the teacher's beam-search output for each training word instead of the gold
  pronunciation (the paper: beam width K = 5; here the task's ``beam_width``). The beam
  outputs are made once per teacher (``Teacher.train_pairs``), which the task uses as
  the training set through ``train_pairs``.

Both take the ``teacher`` context: a zero-argument callable returning the task's
``Teacher`` (trained or loaded on the first call), so only these strategies pay for one.
The teacher is held outside the module's parameters: it is never updated.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench.models.g2p import PAD
from bench.models.g2p_teacher import Teacher
from bench.models.g2p_training import Pairs
from bench.registry import register
from methods.forcing import ForcingOutput, ForcingStrategy, token_nll

__all__ = ["SequenceKD", "WordKD", "word_kd_loss"]


def word_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, gold NLL): (1 − α) · NLL(gold) + α · mean over tokens of −Σ_k q(k) log p(k).

    ``student_logits`` and ``teacher_logits`` are (B, T, V) under the same gold prefix,
    ``targets`` (B, T) with PAD where there is no token (left out of both means)."""
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} and student logits "
            f"{tuple(student_logits.shape)} differ; both must be (batch, steps, phonemes)"
        )
    nll = token_nll(student_logits, targets)
    valid = targets.ne(PAD)
    log_p = student_logits.float().log_softmax(-1)[valid]
    q = teacher_logits.float().detach().softmax(-1)[valid]
    cross_entropy = -(q * log_p).sum(-1).mean()
    return (1 - alpha) * nll + alpha * cross_entropy, nll


class _Distilled(ForcingStrategy):
    requires = ("total_steps", "teacher")

    def __init__(self, total_steps: int = 1000, teacher: Callable[[], Teacher] | None = None):
        super().__init__(total_steps)
        if teacher is None:
            raise ValueError(f"{type(self).__name__} needs a teacher")
        self._teacher = teacher()  # a plain attribute: not a submodule, never optimised

    @property
    def teacher(self) -> Teacher:
        return self._teacher


@register("forcing", "word_kd", display="Word-level KD")
class WordKD(_Distilled):
    """Word-level KD: teacher-forced NLL on gold mixed (α) with the cross-entropy from the
    teacher's per-step distribution under the gold prefix."""

    def __init__(self, total_steps: int = 1000, teacher=None, alpha: float = 0.5) -> None:
        super().__init__(total_steps, teacher)
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha={alpha} must lie in [0, 1] (the weight of the KD term)")
        self.alpha = alpha

    def forward(self, model, src, inputs, targets, step: int) -> ForcingOutput:
        memory, mask = model.encode(src)
        logits, _ = model.decoder.teacher(inputs, memory, mask)
        with torch.no_grad():
            big = self.teacher.model
            t_memory, t_mask = big.encode(src)
            teacher_logits, _ = big.decoder.teacher(inputs, t_memory, t_mask)
        loss, nll = word_kd_loss(logits, teacher_logits, targets, self.alpha)
        return ForcingOutput(loss=loss, nll=nll, teacher_prob=1.0)


@register("forcing", "sequence_kd", display="Sequence-level KD")
class SequenceKD(_Distilled):
    """Sequence-level KD: teacher forcing on the teacher's beam output for each word (the
    ``nll`` logged is that of the teacher's outputs, the student's training targets)."""

    def train_pairs(self, train: Pairs) -> Pairs:
        return self.teacher.train_pairs(train)
