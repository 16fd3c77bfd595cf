"""Quantizers: map continuous encoder outputs to entries of a learned codebook.

Contract (DESIGN.md): ``forward(z: (B, T, D), *, mask=None) -> QuantizerOutput``. ``q`` is
the quantized sequence (straight-through, so gradients of ``q`` reach ``z``), ``codes`` the
chosen entry per group, ``loss`` the auxiliary loss the method needs (diversity, or
codebook + commitment), unweighted (the model applies its own weight, e.g. alpha = 0.1 in
wav2vec 2.0), and ``perplexity`` the code-usage perplexity. ``mask`` (B, T) bool, when given,
restricts the perplexity / diversity statistics to the True positions (the masked time
steps in wav2vec 2.0, as transformers' ``mask_time_indices``).

Every quantizer exposes ``out_dim``, ``num_groups`` (G), ``num_entries`` (V), the property
``codebook`` -> (G, V, out_dim // G) for proxy objectives, and ``anneal(num_updates)``
(a no-op except for the Gumbel temperature).

Notation: l are logits, p̄_g the batch-averaged code distribution of group g,
H(p) = -Σ_v p_v log p_v, perplexity = Σ_g exp(H(p̄_g)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.registry import register

__all__ = [
    "GumbelQuantizer",
    "NoQuantizer",
    "Quantizer",
    "QuantizerOutput",
    "VectorQuantizer",
    "diversity_loss",
    "marginal_probs",
    "perplexity",
]

DiversityForm = Literal["implemented", "paper"]


@dataclass
class QuantizerOutput:
    q: Tensor  # (B, T, out_dim) quantized vectors (straight-through where relevant)
    codes: Tensor  # (B, T, G) long, chosen entry per group (G=1 for VQ); zeros for "none"
    loss: Tensor  # scalar auxiliary loss (diversity / codebook+commitment), 0.0 if none
    perplexity: Tensor  # scalar Σ_g exp(H(p̄_g)) of batch-averaged code usage; 0 for "none"


# ---- pure statistics ------------------------------------------------------------------
def marginal_probs(probs: Tensor, mask: Tensor | None = None) -> Tensor:
    """Batch-averaged code distribution p̄ (G, V) from per-position ``probs`` (N, G, V).

    With a flat ``mask`` (N,) bool, only the True positions are averaged (as transformers'
    ``Wav2Vec2GumbelVectorQuantizer._compute_perplexity``).
    """
    if mask is None:
        return probs.mean(dim=0)  # p̄_g = 1/N Σ_n p_{n,g}
    kept = torch.where(mask[:, None, None], probs, torch.zeros_like(probs))
    return kept.sum(dim=0) / mask.sum()  # p̄_g = Σ_{n in mask} p_{n,g} / |mask|


def perplexity(p_bar: Tensor) -> Tensor:
    """Σ_g exp(H(p̄_g)) for p̄ (G, V): G·V when usage is uniform, G when collapsed."""
    entropy = -torch.xlogy(p_bar, p_bar).sum(dim=-1)  # H(p̄_g) = -Σ_v p̄_gv log p̄_gv
    return torch.exp(entropy).sum()


def diversity_loss(p_bar: Tensor, form: DiversityForm = "implemented") -> Tensor:
    """wav2vec 2.0 diversity loss L_d on p̄ (G, V) (Baevski et al. 2020, §3.2).

    ``"paper"``: L_d = 1/(GV) Σ_g -H(p̄_g) = 1/(GV) Σ_g Σ_v p̄_gv log p̄_gv, in [-log V / V, 0].
    ``"implemented"`` (fairseq, transformers): L_d = (GV - Σ_g exp(H(p̄_g))) / (GV), in
    [0, (V-1)/V]. Both are minimal for uniform usage and maximal for a collapsed codebook.
    """
    groups, entries = p_bar.shape
    num_codevectors = groups * entries
    if form == "implemented":
        return (num_codevectors - perplexity(p_bar)) / num_codevectors  # (GV - PPL) / GV
    if form == "paper":
        return torch.xlogy(p_bar, p_bar).sum() / num_codevectors  # 1/GV Σ_g Σ_v p log p
    raise ValueError(f"diversity form must be 'implemented' or 'paper', got {form!r}")


def _straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Value ``hard`` exactly (soft - soft is exactly 0), gradient of ``soft``."""
    return hard + (soft - soft.detach())


# ---- base class -----------------------------------------------------------------------
class Quantizer(nn.Module):
    """Base class: input validation and the common attributes; subclasses implement _quantize."""

    registry_family: str
    registry_name: str
    requires: ClassVar[tuple[str, ...]] = ("in_dim", "out_dim")  # from the model (registry)
    # True: ``loss`` is a diversity loss, which a model weights by its alpha (wav2vec 2.0);
    # False: a loss the method needs at weight 1 (VQ-VAE's codebook + commitment), or none
    loss_is_diversity: ClassVar[bool] = False
    # True: the quantizer is frozen and its codes are targets that must not move, so the
    # model feeds it the stem's output standardised without learned scale and without
    # dropout (BEST-RQ); False: the model's learned feature norm and feature dropout
    fixed_targets: ClassVar[bool] = False

    def __init__(self, in_dim: int, out_dim: int, groups: int, entries: int) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"in_dim and out_dim must be >= 1, got {in_dim} and {out_dim}")
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.num_groups = int(groups)
        self.num_entries = int(entries)

    @property
    def codebook(self) -> Tensor:
        """The entries, (G, V, out_dim // G)."""
        raise NotImplementedError

    def anneal(self, num_updates: int) -> None:
        """Update schedules to training step ``num_updates`` (no-op unless overridden)."""

    def forward(self, z: Tensor, *, mask: Tensor | None = None) -> QuantizerOutput:
        if z.dim() != 3 or z.shape[-1] != self.in_dim:
            raise ValueError(
                f"{type(self).__name__} expects z of shape (B, T, {self.in_dim}), "
                f"got {tuple(z.shape)}"
            )
        flat_mask = None
        if mask is not None:
            if mask.shape != z.shape[:2]:
                raise ValueError(
                    f"mask must have shape (B, T) = {tuple(z.shape[:2])}, got {tuple(mask.shape)}"
                )
            flat_mask = mask.to(device=z.device, dtype=torch.bool).reshape(-1)
            if not bool(flat_mask.any()):
                raise ValueError("mask selects no position; the code statistics would be empty")
        return self._quantize(z, flat_mask)

    def _quantize(self, z: Tensor, mask: Tensor | None) -> QuantizerOutput:
        raise NotImplementedError


# ---- Gumbel-softmax (wav2vec 2.0) -----------------------------------------------------
@register("quantizer", "gumbel", display="Gumbel-softmax VQ")
class GumbelQuantizer(Quantizer):
    """Product quantization with straight-through Gumbel-softmax (wav2vec 2.0).

    Baevski, Zhou, Mohamed, Auli, "wav2vec 2.0", NeurIPS 2020, §2 and §3.2; Gumbel-softmax
    of Jang, Gu, Poole, ICLR 2017. z is projected to G·V logits l. Training: p = softmax((l +
    g)/τ) with Gumbel noise g; the forward pass uses the hard one-hot argmax_v p, the backward
    the gradient of p (straight-through). Eval: argmax_v l, with the noise-free softmax(l/τ)
    as the straight-through gradient. Each group picks a row of its codebook; the G rows are
    concatenated into q (out_dim). τ(n) = max(τ_max · τ_decay^n, τ_min) is set by anneal(n).

    ``loss`` is the diversity loss on p̄ = batch mean of softmax(l) (no noise, in both modes,
    as fairseq); ``diversity="implemented"`` (default) is fairseq's and transformers'
    (GV - Σ_g exp H(p̄_g)) / GV, ``"paper"`` the paper's 1/(GV) Σ_g -H(p̄_g); see
    :func:`diversity_loss`. ``perplexity`` follows transformers exactly: from softmax(l)
    (no noise) in training, from the hard one-hot codes in eval. So in training
    loss == (GV - perplexity) / GV, transformers' ``Wav2Vec2ForPreTraining`` formula (without
    its multiplication by the number of masked steps).
    Init as fairseq / transformers: codebook U(0, 1), projection weight N(0, 1), bias 0.
    ``tau_decay`` is context (``requires``): the model sets it for the length of its run.
    """

    requires = ("in_dim", "out_dim", "tau_decay")
    loss_is_diversity = True

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 256,
        groups: int = 2,
        entries: int = 320,
        tau_max: float = 2.0,
        tau_min: float = 0.5,
        tau_decay: float = 0.999995,
        diversity: DiversityForm = "implemented",
    ) -> None:
        super().__init__(in_dim, out_dim, groups, entries)
        if groups < 1 or entries < 2:
            raise ValueError(f"need groups >= 1 and entries >= 2, got {groups} and {entries}")
        if out_dim % groups:
            raise ValueError(f"out_dim {out_dim} must be divisible by groups {groups}")
        if not 0 < tau_min <= tau_max:
            raise ValueError(f"need 0 < tau_min <= tau_max, got {tau_min} and {tau_max}")
        if not 0 < tau_decay <= 1:
            raise ValueError(f"tau_decay must be in (0, 1], got {tau_decay}")
        if diversity not in ("implemented", "paper"):
            raise ValueError(f"diversity must be 'implemented' or 'paper', got {diversity!r}")
        self.tau_max, self.tau_min, self.tau_decay = float(tau_max), float(tau_min), tau_decay
        self.diversity = diversity
        self.tau = self.tau_max  # τ(0)
        self.weight_proj = nn.Linear(in_dim, groups * entries)
        self.codevectors = nn.Parameter(torch.empty(groups, entries, out_dim // groups))
        nn.init.normal_(self.weight_proj.weight, mean=0.0, std=1.0)
        nn.init.zeros_(self.weight_proj.bias)
        nn.init.uniform_(self.codevectors)

    @property
    def codebook(self) -> Tensor:
        return self.codevectors

    def anneal(self, num_updates: int) -> None:
        if num_updates < 0:
            raise ValueError(f"num_updates must be >= 0, got {num_updates}")
        self.tau = max(self.tau_max * self.tau_decay**num_updates, self.tau_min)  # τ(n)

    def _quantize(self, z: Tensor, mask: Tensor | None) -> QuantizerOutput:
        batch, steps, _ = z.shape
        groups, entries = self.num_groups, self.num_entries
        logits = self.weight_proj(z).reshape(batch * steps, groups, entries).float()  # l
        soft = torch.softmax(logits, dim=-1)  # softmax(l), no noise
        if self.training:
            # g = -log(Exp(1)) ~ Gumbel(0, 1), drawn as torch's F.gumbel_softmax draws it
            gumbels = -torch.empty_like(logits).exponential_().log()
            relaxed = torch.softmax((logits + gumbels) / self.tau, dim=-1)  # p = softmax((l+g)/τ)
        else:
            relaxed = torch.softmax(logits / self.tau, dim=-1)
        codes = relaxed.argmax(dim=-1) if self.training else logits.argmax(dim=-1)  # (N, G)
        hard = F.one_hot(codes, entries).to(relaxed.dtype)
        probs = _straight_through(hard, relaxed)  # forward: one-hot; backward: ∂p
        codevectors = self.codevectors
        q = torch.einsum("ngv,gvd->ngd", probs.to(codevectors.dtype), codevectors)  # one-hot · C_g
        soft_bar = marginal_probs(soft, mask)
        # transformers' codevector_perplexity: of p̄ (already computed) in training, of the
        # hard codes in eval
        stats_bar = soft_bar.detach() if self.training else marginal_probs(hard, mask)
        return QuantizerOutput(
            q=q.reshape(batch, steps, self.out_dim),
            codes=codes.reshape(batch, steps, groups),
            loss=diversity_loss(soft_bar, self.diversity),
            perplexity=perplexity(stats_bar),
        )


# ---- VQ-VAE ---------------------------------------------------------------------------
@register("quantizer", "vq", display="VQ")
class VectorQuantizer(Quantizer):
    """Nearest-neighbour vector quantization (VQ-VAE) with a straight-through estimator.

    van den Oord, Vinyals, Kavukcuoglu, "Neural Discrete Representation Learning", NeurIPS
    2017. z is projected to z_e (out_dim); k = argmin_j ||z_e - e_j||²; q = e_k in the forward
    pass with the gradient copied to z_e. loss = ||sg[z_e] - e||² + β ||z_e - sg[e]||² (eq. 3;
    each term a mean over positions and dimensions). With ``ema=True`` the codebook is not a
    parameter but follows exponential moving averages of the assignment counts N_j and sums
    m_j (van den Oord Appendix A.1; Razavi, van den Oord, Vinyals 2019, "VQ-VAE-2"), with
    Laplace smoothing of the counts, and loss = β ||z_e - sg[e]||² (commitment only). EMA
    state starts as N_j = 1, m_j = e_j, so the first update is not a jump.

    Dead codes (Dhariwal et al. 2020 "Jukebox" §3.3; Zeghidour et al. 2021 "SoundStream"
    §3.3): every training forward also tracks u_j, an EMA (decay ``ema_decay``, start 1/V) of
    the fraction of positions assigned to entry j; entries with u_j < ``dead_code_threshold``
    are re-initialised to random z_e of the current batch (and their u_j reset to 1/V; with
    ema, N_j = 1 and m_j = e_j). ``dead_code_threshold=0`` disables this. In the non-EMA
    mode the rows are overwritten in place; an optimizer's moments for them are not reset.
    ``mask`` restricts only ``perplexity``; the loss and the codebook updates use all positions.
    """

    # registered in __init__ (embed: a Parameter, or a buffer with ema=True)
    embed: Tensor
    usage: Tensor  # u_j
    cluster_size: Tensor  # N_j, ema only
    embed_sum: Tensor  # m_j, ema only

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 256,
        entries: int = 320,
        beta: float = 0.25,
        ema: bool = False,
        ema_decay: float = 0.99,
        epsilon: float = 1e-5,
        dead_code_threshold: float = 1e-3,
    ) -> None:
        super().__init__(in_dim, out_dim, 1, entries)
        if entries < 2:
            raise ValueError(f"entries must be >= 2, got {entries}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if not 0 <= ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        if epsilon <= 0 or dead_code_threshold < 0:
            raise ValueError("epsilon must be > 0 and dead_code_threshold >= 0")
        self.beta, self.ema, self.ema_decay = float(beta), bool(ema), float(ema_decay)
        self.epsilon, self.dead_code_threshold = float(epsilon), float(dead_code_threshold)
        self.proj = nn.Linear(in_dim, out_dim)
        init = torch.empty(entries, out_dim)
        nn.init.uniform_(init, -1.0 / entries, 1.0 / entries)
        if self.ema:
            self.register_buffer("embed", init)
            self.register_buffer("cluster_size", torch.ones(entries))  # N_j
            self.register_buffer("embed_sum", init.clone())  # m_j
        else:
            self.embed = nn.Parameter(init)
        self.register_buffer("usage", torch.full((entries,), 1.0 / entries))  # u_j

    @property
    def codebook(self) -> Tensor:
        return self.embed.unsqueeze(0)  # (1, V, out_dim)

    def _quantize(self, z: Tensor, mask: Tensor | None) -> QuantizerOutput:
        batch, steps, _ = z.shape
        z_e = self.proj(z).reshape(batch * steps, self.out_dim)
        with torch.no_grad():
            embed = self.embed.to(z_e.dtype)
            # ||z_e - e_j||² = ||z_e||² - 2 z_e·e_j + ||e_j||²; ||z_e||² is the same for every j,
            # so k = argmin_j (||e_j||² - 2 z_e·e_j), one fused matmul
            scores = torch.addmm(embed.pow(2).sum(1), z_e, embed.t(), alpha=-2)
            codes = scores.argmin(dim=1)  # k = argmin_j ||z_e - e_j||²
        e = F.embedding(codes, self.embed).to(z_e.dtype)
        q = e.detach() + (z_e - z_e.detach())  # value e_k, gradient copied to z_e
        commitment = F.mse_loss(z_e, e.detach())  # ||z_e - sg[e]||²
        if self.ema:
            loss = self.beta * commitment
        else:
            loss = F.mse_loss(e, z_e.detach()) + self.beta * commitment  # ||sg[z_e] - e||² + β·
        # code counts n_j by bincount, not a one-hot (N, V) matrix; the same p̄ as marginal_probs
        counts = torch.bincount(codes, minlength=self.num_entries).to(z_e.dtype)  # n_j
        kept = counts if mask is None else torch.bincount(codes[mask], minlength=self.num_entries)
        p_bar = kept.to(z_e.dtype) / kept.sum()
        if self.training:
            self._update(z_e.detach(), codes, counts)
        return QuantizerOutput(
            q=q.reshape(batch, steps, self.out_dim),
            codes=codes.reshape(batch, steps, 1),
            loss=loss,
            perplexity=perplexity(p_bar[None]),
        )

    @torch.no_grad()
    def _update(self, z_e: Tensor, codes: Tensor, counts: Tensor) -> None:
        gamma = self.ema_decay
        self.usage.mul_(gamma).add_(counts / len(z_e), alpha=1 - gamma)  # u_j
        if self.ema:
            self.cluster_size.mul_(gamma).add_(counts, alpha=1 - gamma)  # N_j = γN_j + (1-γ)n_j
            # Σ_{i: k_i = j} z_e,i by index_add (N·D), not one_hotᵀ @ z_e (N·V·D)
            sums = torch.zeros_like(self.embed_sum)
            sums.index_add_(0, codes, z_e.to(sums.dtype))
            self.embed_sum.mul_(gamma).add_(sums, alpha=1 - gamma)  # m_j
            total = self.cluster_size.sum()
            # Laplace smoothing: N_j <- (N_j + ε) / (Σ N + V ε) · Σ N
            smoothed = (self.cluster_size + self.epsilon) / (
                total + self.num_entries * self.epsilon
            )
            self.embed.copy_(self.embed_sum / (smoothed * total)[:, None])  # e_j = m_j / N_j
        if self.dead_code_threshold <= 0:
            return
        dead = self.usage < self.dead_code_threshold
        if bool(dead.any()):
            n_dead = int(dead.sum())
            pick = torch.randint(len(z_e), (n_dead,), device=z_e.device)
            fresh = z_e[pick].to(self.embed.dtype)
            self.embed.data[dead] = fresh
            self.usage[dead] = 1.0 / self.num_entries
            if self.ema:
                self.cluster_size[dead] = 1.0
                self.embed_sum[dead] = fresh


# ---- continuous targets ---------------------------------------------------------------
@register("quantizer", "none", display="No quantizer")
class NoQuantizer(Quantizer):
    """No quantization: a linear projection to out_dim (continuous targets).

    The "continuous targets" ablation of wav2vec 2.0 (Baevski et al. 2020, §5.5, Table 4).
    loss 0, perplexity 0, codes zeros (G = 1); it has no codebook.
    """

    def __init__(self, in_dim: int, out_dim: int = 256) -> None:
        super().__init__(in_dim, out_dim, 1, 0)
        self.proj = nn.Linear(in_dim, out_dim)

    @property
    def codebook(self) -> Tensor:
        raise ValueError(
            "quantizer 'none' has no codebook; an objective that needs codebook entries "
            "(proxies, target codes) needs a quantizer with a codebook ('gumbel' or 'vq')"
        )

    def _quantize(self, z: Tensor, mask: Tensor | None) -> QuantizerOutput:
        batch, steps, _ = z.shape
        zero = z.new_zeros(())
        return QuantizerOutput(
            q=self.proj(z),
            codes=torch.zeros(batch, steps, 1, dtype=torch.long, device=z.device),
            loss=zero,
            perplexity=zero.clone(),
        )
