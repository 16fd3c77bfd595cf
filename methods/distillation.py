"""Knowledge distillation of a classifier (Hinton, Vinyals & Dean 2015, "Distilling the
Knowledge in a Neural Network", §2), registered under the family "distill".

A student is trained on

    L = α · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T)) + (1 − α) · CE(z_s, y)

with z_t the teacher's logits, z_s the student's, T the temperature and α the weight of the
soft targets. The T² keeps the soft term's gradient on the scale of the hard term's when T
changes: ∂/∂z_s of T²·KL is T·(softmax(z_s/T) − softmax(z_t/T)) (§2.1). The paper's grid
is T ∈ {1, 2, 4, 8} (its MNIST runs used T = 8 and up to 20) with α close to 1 (its
"considerably lower weight on the second objective"): α ∈ {0.5, 0.9}.

``none`` is the same student without a teacher: plain cross-entropy (α = 0). Both take
``(student_logits, labels, teacher_logits)``, so a task calls every row the same way.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.registry import register

__all__ = ["KnowledgeDistillation", "NoDistillation", "kd_loss", "soft_target_kl"]


def soft_target_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """T² · KL(softmax(z_t/T) ‖ softmax(z_s/T)), averaged over the N rows of (N, K) logits."""
    t = float(temperature)
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float().detach() / t, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return t * t * kl


def kd_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """α · T² · KL(teacher_T ‖ student_T) + (1 − α) · CE(student, y); no teacher: CE."""
    hard = F.cross_entropy(student_logits.float(), labels)
    if teacher_logits is None or alpha == 0:
        return hard
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} and student logits "
            f"{tuple(student_logits.shape)} differ in shape; both must be (N, classes)"
        )
    soft = soft_target_kl(student_logits, teacher_logits, temperature)
    return alpha * soft + (1 - alpha) * hard


@register("distill", "none")
class NoDistillation(nn.Module):
    """The student trained alone: cross-entropy on the labels (the teacher is ignored)."""

    needs_teacher = False

    def forward(
        self,
        student_logits: torch.Tensor,
        labels: torch.Tensor,
        teacher_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return kd_loss(student_logits, labels, None, 1.0, 0.0)


@register("distill", "kd")
class KnowledgeDistillation(nn.Module):
    """Hinton et al. (2015) knowledge distillation with temperature T and soft weight α."""

    needs_teacher = True

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9) -> None:
        super().__init__()
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {temperature}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def forward(
        self,
        student_logits: torch.Tensor,
        labels: torch.Tensor,
        teacher_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if teacher_logits is None:
            raise ValueError("distill/kd needs the teacher's logits; pass teacher_logits=")
        return kd_loss(student_logits, labels, teacher_logits, self.temperature, self.alpha)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, alpha={self.alpha}"
