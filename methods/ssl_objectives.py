"""Self-supervised objectives for masked speech models, registered under family "objective".

Contract (DESIGN.md): ``forward(context (N, D), targets (N, D), negatives (N, K, D), **extra)
-> ObjectiveOutput`` over the N masked time steps of a batch, rows in the row-major order of
``mask.nonzero()``. Each objective says in ``needs`` what the model must supply:

- "negatives": distractors for each row, drawn by :func:`sample_negatives` and gathered
  from the targets; extra ``negative_mask`` (N, K) bool marks the valid ones.
- "codebook": the quantiser's codebook as proxies; extras ``target_codes`` and ``proxies``.
- "teacher": regression targets from an EMA teacher (:func:`data2vec_targets`,
  :func:`ema_update`, :func:`ema_decay`); ``negatives`` is ignored and may be None.

The loss is a mean over rows; ``accuracy`` is the fraction of rows whose positive scores best
(nan where that means nothing). The loss cores live in methods/losses.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from bench.registry import register
from methods.losses import check_tuple, proxy_nca, squared_distance, triplet_margin

__all__ = [
    "Contrastive",
    "Data2VecRegression",
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
        pos, neg = _cosine_logits(context, targets, negatives, self.kappa)  # sim/κ
        if negative_mask is not None:
            neg = neg.masked_fill(~negative_mask, float("-inf"))
        # eq. 3 as info_nce: log(e^pos + Σ e^neg) − pos; a row without negatives gives 0
        loss = torch.logaddexp(pos, torch.logsumexp(neg, dim=1)) - pos
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
    """

    needs: ClassVar[str] = "teacher"
    LOSSES: ClassVar[tuple[str, ...]] = ("l2", "smooth_l1")

    def __init__(self, loss: str = "l2", beta: float = 0.25) -> None:
        super().__init__()
        if loss not in self.LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(self.LOSSES)}")
        if loss == "smooth_l1" and not beta > 0:
            raise ValueError(f"beta must be > 0 for smooth_l1, got {beta}")
        self.loss = loss
        self.beta = float(beta)

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


# ---- data2vec teacher ---------------------------------------------------------------------
def data2vec_targets(layer_outputs: list[torch.Tensor], top_k: int) -> torch.Tensor:
    """Teacher targets y_t (B, T, D): the average of the top-K blocks, each instance-normalised.

    data2vec §3.3 "Targets": y_t = (1/K) Σ_{l=L−K+1}^{L} â_t^l, with â^l the output of block l
    normalised, for speech by instance normalisation over time per channel (no affine
    parameters; paper K = 8 of 12 blocks). Computed in float32, as fairseq does. Padded frames
    are not excluded from the time statistics (fairseq does not either).
    """
    if not layer_outputs:
        raise ValueError("data2vec_targets needs at least one layer output")
    if not 1 <= top_k <= len(layer_outputs):
        raise ValueError(f"top_k must be in [1, {len(layer_outputs)}], got {top_k}")
    shape = layer_outputs[0].shape
    if len(shape) != 3 or any(layer.shape != shape for layer in layer_outputs):
        raise ValueError("layer_outputs must all be (B, T, D) tensors of the same shape")
    top = layer_outputs[-top_k:]
    normed = [F.instance_norm(a.float().transpose(1, 2)).transpose(1, 2) for a in top]  # â^l
    return torch.stack(normed).mean(dim=0)  # (1/K) Σ_l â^l


def ema_decay(
    step: int, tau0: float = 0.999, tau_end: float = 0.9999, tau_steps: int = 30000
) -> float:
    """EMA decay τ at update ``step``: linear from τ0 to τe over τn updates, then τe.

    data2vec §3.2 "Teacher parameterization"; speech values τ0 = 0.999, τe = 0.9999,
    τn = 30,000 (§4.2).
    """
    if step < 0 or tau_steps < 0:
        raise ValueError(f"step and tau_steps must be >= 0, got {step} and {tau_steps}")
    if step >= tau_steps:
        return float(tau_end)
    return tau0 + (tau_end - tau0) * step / tau_steps  # τ = τ0 + (τe − τ0) · step/τn


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """In place: Δ ← τ Δ + (1 − τ) θ for each floating-point parameter (data2vec §3.2).

    Teacher and student must have the same parameter names and shapes. Buffers (e.g.
    normalisation statistics) are copied from the student, not averaged; integer buffers too.
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    t_params, s_params = dict(teacher.named_parameters()), dict(student.named_parameters())
    if t_params.keys() != s_params.keys():
        missing = sorted(t_params.keys() ^ s_params.keys())
        raise ValueError(f"teacher and student parameters differ: {', '.join(missing[:5])}")
    for name, t in t_params.items():
        s = s_params[name]
        if t.shape != s.shape:
            raise ValueError(f"shape mismatch for {name}: {tuple(t.shape)} vs {tuple(s.shape)}")
        if t.is_floating_point():
            t.lerp_(s.to(t.dtype), 1.0 - decay)  # Δ + (1 − τ)(θ − Δ) = τΔ + (1 − τ)θ
        else:
            t.copy_(s)
    s_buffers = dict(student.named_buffers())
    for name, t in teacher.named_buffers():
        if name in s_buffers:
            t.copy_(s_buffers[name])


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
def _cosine_logits(
    context: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor, kappa: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """sim/κ of each context row with its target (N,) and with its negatives (N, K).

    sim(c, q) = c·q / (max(‖c‖, ε) max(‖q‖, ε)), ε = 1e-8, as ``F.cosine_similarity``; the
    negatives go through :class:`_RowCosine`, which never broadcasts them against the context.
    """
    dtype = torch.promote_types(torch.promote_types(context.dtype, targets.dtype), negatives.dtype)
    context, targets, negatives = context.to(dtype), targets.to(dtype), negatives.to(dtype)
    c = context / torch.linalg.vector_norm(context, dim=-1, keepdim=True).clamp_min(_EPS)  # ĉ
    pos = (c * targets).sum(dim=-1) / torch.linalg.vector_norm(targets, dim=-1).clamp_min(_EPS)
    return pos / kappa, _RowCosine.apply(c, negatives) / kappa


_EPS = 1e-8  # F.cosine_similarity's


class _RowCosine(torch.autograd.Function):
    """s_nk = ĉ_n·q̃_nk / max(‖q̃_nk‖, ε) for rows ĉ (N, D) and their negatives q̃ (N, K, D).

    Written out because the (N, K, D) negatives dominate the cost: the forward only reads
    them (a batched mat-vec and a norm) and the backward allocates one (N, K, D) gradient,
    ∂s/∂q̃ = (ĉ − s q̃/‖q̃‖)/‖q̃‖, where autograd through ``F.cosine_similarity`` builds
    several. About 2-5x faster on the CPU, forward and backward, at wav2vec 2.0 sizes.
    """

    @staticmethod
    def forward(ctx, c: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        raw = torch.linalg.vector_norm(negatives, dim=-1)  # ‖q̃‖ (N, K)
        dots = torch.bmm(c.unsqueeze(1), negatives.transpose(1, 2)).squeeze(1)  # ĉ·q̃
        sim = dots / raw.clamp_min(_EPS)
        ctx.save_for_backward(c, negatives, raw, sim)
        return sim

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        c, negatives, raw, sim = ctx.saved_tensors
        norm = raw.clamp_min(_EPS)
        a = grad / norm  # ∂L/∂(ĉ·q̃)
        grad_c = grad_negatives = None
        if ctx.needs_input_grad[0]:
            grad_c = torch.bmm(a.unsqueeze(1), negatives).squeeze(1)  # Σ_k a_nk q̃_nk
        if ctx.needs_input_grad[1]:
            grad_negatives = a.unsqueeze(-1) * c.unsqueeze(1)  # a ĉ
            # − a s q̃/‖q̃‖, where the norm is not clamped (the clamp has no gradient)
            coef = torch.where(raw > _EPS, a * sim / norm, torch.zeros_like(a))
            grad_negatives.addcmul_(negatives, coef.unsqueeze(-1), value=-1)
        return grad_c, grad_negatives


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
