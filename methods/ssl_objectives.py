"""Self-supervised objectives for masked speech models, registered under family "objective".

Contract (DESIGN.md): ``forward(context (N, D), targets (N, D), negatives (N, K, D), **extra)
-> ObjectiveOutput`` over the N masked time steps of a batch, rows in the row-major order of
``mask.nonzero()``. Each objective says in ``needs`` what the model must supply:

- "negatives": distractors for each row, drawn by :func:`sample_negatives` and gathered
  from the targets; extra ``negative_mask`` (N, K) bool marks the valid ones.
- "codebook": the quantiser's codebook as proxies; extras ``target_codes`` and ``proxies``.
- "teacher": regression targets from an EMA teacher; ``negatives`` is ignored and may be
  None. Such an objective owns its teacher (:class:`EMATeacher`, built from the ``student``
  network the model passes as context): ``objective.teacher`` makes the targets and follows
  the student by EMA; the model reads that attribute and builds no quantizer.

The loss is a mean over rows; ``accuracy`` is the fraction of rows whose positive scores best
(nan where that means nothing). The loss cores live in methods/loss_cores.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bench.registry import register
from methods.ema_teacher import EMATeacher, data2vec_targets, ema_decay, ema_update
from methods.loss_cores import (
    check_tuple,
    cosine_logits,
    info_nce_logits,
    proxy_nca,
    squared_distance,
    triplet_margin,
)

__all__ = [
    "Contrastive",
    "Data2VecRegression",
    "EMATeacher",
    "ObjectiveOutput",
    "ProxyNCA",
    "SSLObjective",
    "Triplet",
    "data2vec_targets",
    "ema_decay",
    "ema_update",
    "sample_negatives",
]


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # scalar, mean over the N masked steps
    accuracy: torch.Tensor  # scalar in [0, 1]: positive scores best; nan where meaningless


class SSLObjective(nn.Module):
    """Base class: the ``needs`` declaration and shared input checks."""

    registry_family: str
    registry_name: str
    needs: ClassVar[str]  # "negatives" | "codebook" | "teacher": what the model must pass
    requires: ClassVar[tuple[str, ...]] = ()  # context from the model (see registry.build)
    # The objective's own EMA teacher, which makes its targets (None: the targets are the
    # model's quantized features). A model reads this attribute; it never checks names.
    teacher: EMATeacher | None

    def __init__(self) -> None:
        super().__init__()
        self.teacher = None


@register("objective", "contrastive")
class Contrastive(SSLObjective):
    """wav2vec 2.0 contrastive loss L_m (Baevski et al., NeurIPS 2020, eq. 3), κ = 0.1.

    Mean over rows of InfoNCE with cosine similarity between the context c_t and the
    quantised target q_t against K distractors (paper K = 100). The diversity loss L_d
    belongs to the quantiser (QuantizerOutput.loss), not here. Accuracy: the positive's
    similarity is strictly above every valid negative's (ties count as wrong).
    """

    needs: ClassVar[str] = "negatives"

    def __init__(self, kappa: float = 0.1) -> None:
        super().__init__()
        if not kappa > 0:
            raise ValueError(f"kappa must be > 0, got {kappa}")
        self.kappa = float(kappa)

    def forward(
        self,
        context: torch.Tensor,
        targets: torch.Tensor,
        negatives: torch.Tensor,
        *,
        negative_mask: torch.Tensor | None = None,
    ) -> ObjectiveOutput:
        check_tuple(context, targets, negatives, negative_mask)  # anchor = context
        pos, neg = cosine_logits(context, targets, negatives, self.kappa)  # sim/κ
        if negative_mask is not None:
            neg = neg.masked_fill(~negative_mask, float("-inf"))
        # eq. 3 as info_nce: log(e^pos + Σ e^neg) − pos; a row without negatives gives 0
        loss = info_nce_logits(pos, neg)
        with torch.no_grad():
            correct = _positive_wins(pos, neg, None)  # same logits, ordered as sim (κ > 0)
        return ObjectiveOutput(loss=_mean(loss), accuracy=_rate(correct))


@register("objective", "triplet")
class Triplet(SSLObjective):
    """Triplet margin loss with the context as anchor, its target as positive.

    FaceNet (Schroff et al., CVPR 2015) with margin 0.2 on squared distances of L2-normalised
    vectors; the negative is mined among the row's valid distractors: "hardest" (batch-hard,
    Hermans et al. 2017), "random", or "all" (mean over them). The issue calls the margin α;
    it is FaceNet's α, not wav2vec 2.0's diversity-loss weight α. Accuracy: the positive is
    strictly closer than every valid negative. ``generator`` feeds "random" mining.
    """

    needs: ClassVar[str] = "negatives"

    def __init__(self, margin: float = 0.2, mining: str = "hardest") -> None:
        super().__init__()
        if not margin >= 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if mining not in ("hardest", "random", "all"):
            raise ValueError(f"unknown mining {mining!r}; choose hardest, random or all")
        self.margin = float(margin)
        self.mining = mining

    def forward(
        self,
        context: torch.Tensor,
        targets: torch.Tensor,
        negatives: torch.Tensor,
        *,
        negative_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> ObjectiveOutput:
        loss = triplet_margin(
            context, targets, negatives, self.margin, self.mining, generator, negative_mask
        )
        with torch.no_grad():
            d_pos = squared_distance(context, targets)
            d_neg = squared_distance(context.unsqueeze(1), negatives)
            correct = _positive_wins(-d_pos, -d_neg, negative_mask)
        return ObjectiveOutput(loss=_mean(loss), accuracy=_rate(correct))


@register("objective", "proxy")
class ProxyNCA(SSLObjective):
    """Proxy-NCA (Movshovitz-Attias et al., ICCV 2017) with the quantiser's codebook as proxies.

    The context (N, D) is cut into G chunks of D/G = Dg; chunk g is the anchor for group g,
    whose V codebook entries (``proxies[g]``, (V, Dg)) are the proxies and whose entry
    ``target_codes[:, g]`` is the positive. Loss: mean over groups and rows. ``targets`` and
    ``negatives`` are ignored (the positive is given by the codes). Accuracy: the nearest
    proxy is the positive, averaged over groups and rows. The proxies are not detached:
    the codebook receives gradient from this loss, as proxies do in the paper.
    """

    needs: ClassVar[str] = "codebook"

    def forward(
        self,
        context: torch.Tensor,
        targets: torch.Tensor | None,
        negatives: torch.Tensor | None,
        *,
        target_codes: torch.Tensor,
        proxies: torch.Tensor,
    ) -> ObjectiveOutput:
        if proxies.dim() != 3:
            raise ValueError(f"proxies must be (G, V, Dg), got shape {tuple(proxies.shape)}")
        groups, _, dim_group = proxies.shape
        n, dim = context.shape
        if dim != groups * dim_group:
            raise ValueError(
                f"context dim D={dim} must equal groups*codevector dim = {groups}*{dim_group} "
                f"= {groups * dim_group}: project the context to the codebook's total dim"
            )
        if target_codes.shape != (n, groups):
            raise ValueError(
                f"target_codes must be ({n}, {groups}), got {tuple(target_codes.shape)}"
            )
        chunks = context.reshape(n, groups, dim_group)  # c = [c^1 | ... | c^G]
        losses, correct = [], []
        for g in range(groups):
            code = target_codes[:, g]
            losses.append(proxy_nca(chunks[:, g], proxies[g], code))
            with torch.no_grad():
                d = squared_distance(chunks[:, g].unsqueeze(1), proxies[g].unsqueeze(0))
                correct.append(d.argmin(dim=1) == code)  # nearest proxy is the positive
        loss = torch.stack(losses, dim=1)  # (N, G)
        return ObjectiveOutput(loss=_mean(loss), accuracy=_rate(torch.stack(correct)))


@register("objective", "data2vec")
class Data2VecRegression(SSLObjective):
    """data2vec regression of the student's context onto the teacher's targets.

    Baevski, Hsu, Xu, Babu, Gu, Auli, "data2vec", ICML 2022, §3.3 "Objective": per time step,
    L = Σ_d ℓ(f_t(x)_d − y_t,d) with ℓ the Smooth L1 (Huber) loss of transition point β, or the
    squared error. For speech the authors' released recipe (fairseq
    examples/data2vec/config/audio/pretraining/base_librispeech.yaml: ``loss_beta: 0``, which
    data2vec_audio.py documents as "0 means use l2 loss") uses the squared error, so that is
    the default here; β (used only by ``loss="smooth_l1"``; data2vec's text recipe uses 4,
    vision 2) defaults to 0.25. As in that recipe the per-step sum over D is scaled by 1/√D
    (``loss_scale: null``) and averaged over the masked steps. Targets are constants (the
    teacher's, :func:`data2vec_targets`); ``negatives`` is ignored. Accuracy is nan.

    Built with a ``student`` (the model's context network; registry context, with the
    teacher's ``top_k`` and EMA schedule ``tau0``, ``tau_end``, ``tau_steps``) it owns its
    :class:`EMATeacher` as ``self.teacher``; without one it scores the targets it is given.
    """

    needs: ClassVar[str] = "teacher"
    requires = ("student", "top_k", "tau0", "tau_end", "tau_steps")
    LOSSES: ClassVar[tuple[str, ...]] = ("l2", "smooth_l1")

    def __init__(
        self,
        loss: str = "l2",
        beta: float = 0.25,
        student: nn.Module | None = None,
        top_k: int = 8,
        tau0: float = 0.999,
        tau_end: float = 0.9999,
        tau_steps: int = 30000,
    ) -> None:
        super().__init__()
        if loss not in self.LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(self.LOSSES)}")
        if loss == "smooth_l1" and not beta > 0:
            raise ValueError(f"beta must be > 0 for smooth_l1, got {beta}")
        self.loss = loss
        self.beta = float(beta)
        if student is not None:
            self.teacher = EMATeacher(student, top_k, tau0, tau_end, tau_steps)

    def forward(
        self,
        context: torch.Tensor,
        targets: torch.Tensor,
        negatives: torch.Tensor | None = None,
    ) -> ObjectiveOutput:
        if context.dim() != 2 or targets.shape != context.shape:
            raise ValueError(
                f"context and targets must both be (N, D); got {tuple(context.shape)} and "
                f"{tuple(targets.shape)}"
            )
        x, y = context.float(), targets.detach().float()
        if self.loss == "l2":
            per_dim = (x - y).pow(2)  # (f_t(x) − y_t)²
        else:  # ½(x−y)²/β if |x−y| < β, else |x−y| − ½β   (§3.3)
            per_dim = F.smooth_l1_loss(x, y, reduction="none", beta=self.beta)
        loss = per_dim.sum(dim=-1) / math.sqrt(context.shape[1])  # Σ_d ℓ / √D (fairseq scale)
        nan = torch.tensor(float("nan"), device=context.device)
        return ObjectiveOutput(loss=_mean(loss), accuracy=nan)


# ---- distractor sampling ------------------------------------------------------------------
def sample_negatives(
    mask: torch.Tensor, num_negatives: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """K distractor indices per masked step, from the other masked steps of its utterance.

    wav2vec 2.0 §3.2: "distractors are uniformly sampled from other masked time steps of the
    same utterance" (K = 100), with replacement. Rows are the N = mask.sum() masked steps in
    the row-major order of ``mask.nonzero()``; indices point into the flattened (B*T)
    positions, so ``targets.reshape(B*T, D)[idx]`` gathers (N, K, D). Returns ``(idx, valid)``
    (N, K) long and bool; valid is False for the rows of an utterance with a single masked
    step (no distractor exists), whose idx then points at the positive itself and must be
    masked out. Fully vectorised: one uniform draw per entry from ``generator``.
    """
    if mask.dim() != 2 or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a (B, T) bool tensor, got {mask.dtype} {tuple(mask.shape)}")
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
    device = mask.device
    seq_len = mask.shape[1]
    rows = mask.nonzero()  # (N, 2): (b, t), sorted by b then t
    flat = rows[:, 0] * seq_len + rows[:, 1]  # positions in B*T of the masked steps
    counts = mask.sum(dim=1)  # c_b: masked steps per utterance
    starts = torch.cumsum(counts, 0) - counts  # first row of utterance b
    start = starts[rows[:, 0]]  # (N,)
    count = counts[rows[:, 0]]  # (N,)
    rank = torch.arange(len(rows), device=device) - start  # r: index of the row in its utterance
    # u ~ U{0, ..., c_b − 2}, then skip the positive: j = u + [u ≥ r] is uniform over the others
    uniform = torch.rand(
        (len(rows), num_negatives), generator=generator, dtype=torch.float64, device=device
    )
    others = (count - 1).clamp(min=1).unsqueeze(1)
    u = (uniform * others).long().clamp(max=others - 1)
    j = u + (u >= rank.unsqueeze(1)).long()
    valid = (count >= 2).unsqueeze(1).expand(-1, num_negatives)
    j = torch.where(valid, j, rank.unsqueeze(1))  # no distractor: point at the positive itself
    return flat[start.unsqueeze(1) + j], valid.clone()


# ---- helpers ------------------------------------------------------------------------------
def _positive_wins(
    score_pos: torch.Tensor, score_neg: torch.Tensor, negative_mask: torch.Tensor | None
) -> torch.Tensor:
    """(N,) bool: the positive's score is strictly above every valid negative's."""
    if negative_mask is not None:
        score_neg = score_neg.masked_fill(~negative_mask, float("-inf"))
    if score_neg.shape[1] == 0:
        return torch.ones_like(score_pos, dtype=torch.bool)
    return score_pos > score_neg.max(dim=1).values


def _mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over all elements; 0 (with a graph) for an empty batch instead of nan."""
    return x.sum() * 0.0 if x.numel() == 0 else x.mean()


def _rate(correct: torch.Tensor) -> torch.Tensor:
    """Fraction of True entries, detached; nan for an empty batch."""
    return correct.float().mean() if correct.numel() else torch.tensor(float("nan"))
