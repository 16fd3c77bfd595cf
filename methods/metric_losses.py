"""Metric-learning losses (family "loss"): ``loss(embeddings (N, D), labels (N,))``.

Each registered loss is a ``MetricLoss``: the base owns ``forward`` (shape checks, the
miner contract) and a subclass implements ``compute``. Each calls one of the pure cores in
methods/loss_cores.py, the ones the SSL objectives use too; the tuple-based losses take the
(anchor, positive, negatives) tuples a miner chose (methods/miners.py), all of them when no
miner is given. Distances are those of the cores: d = ‖x̂ − ŷ‖² between unit vectors.

A baseline without training is not a loss: the tasks name it loss "-".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.registry import register
from methods.loss_cores import (
    info_nce_logits,
    pair_margin,
    pairwise_squared_distance,
    proxy_anchor,
    proxy_nca,
    triplet_margin_distances,
)

__all__ = [
    "ContrastiveLoss",
    "MetricLoss",
    "MetricLossOutput",
    "NTXentLoss",
    "ProxyAnchorLoss",
    "ProxyNCALoss",
    "TripletLoss",
    "Tuples",
    "all_tuples",
    "positive_pairs",
]


@dataclass
class Tuples:
    """The (anchor, positive, negatives) tuples of a batch, as indices into the batch.

    Row r is anchor ``anchor[r]`` with positive ``positive[r]``; its negatives are the batch
    items j with ``negative_mask[r, j]`` True (a miner picks them; see methods/miners.py).
    """

    anchor: torch.Tensor  # (M,) long
    positive: torch.Tensor  # (M,) long
    negative_mask: torch.Tensor  # (M, N) bool

    def __len__(self) -> int:
        return len(self.anchor)


@dataclass
class MetricLossOutput:
    """What a metric-learning loss returns."""

    loss: torch.Tensor  # scalar, to back-propagate
    active: float | None = None  # share of pairs/triplets with a non-zero loss (None: n/a)


def positive_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ordered pair (i, j), i ≠ j, with the same label: (anchor, positive) indices."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    same.fill_diagonal_(False)
    anchor, positive = same.nonzero(as_tuple=True)
    return anchor, positive


def all_tuples(labels: torch.Tensor) -> Tuples:
    """Every positive pair with every negative of its anchor (all valid triplets)."""
    anchor, positive = positive_pairs(labels)
    negative_mask = labels[anchor].unsqueeze(1) != labels.unsqueeze(0)  # (M, N)
    return Tuples(anchor, positive, negative_mask)


class MetricLoss(nn.Module):
    """Base of the registered metric-learning losses: ``forward(embeddings, labels)``."""

    uses_miner: bool = False  # True: takes the tuples a miner chose (default: all of them)
    needs_proxies: bool = False  # True: constructed with num_classes and embedding_dim

    def forward(
        self, embeddings: torch.Tensor, labels: torch.Tensor, tuples: Tuples | None = None
    ) -> MetricLossOutput:
        if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"{type(self).__name__} needs embeddings (N, D) and labels (N,); got "
                f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
            )
        if tuples is not None and not self.uses_miner:
            raise ValueError(f"{type(self).__name__} takes no miner; pass tuples=None")
        return self.compute(embeddings, labels.long(), tuples)

    def compute(
        self, embeddings: torch.Tensor, labels: torch.Tensor, tuples: Tuples | None
    ) -> MetricLossOutput:
        """The loss of a checked batch: ``labels`` are long; ``tuples`` is None unless
        ``uses_miner`` (then None means every valid tuple)."""
        raise NotImplementedError


@register("loss", "contrastive", display="Contrastive")
class ContrastiveLoss(MetricLoss):
    """Pair-margin contrastive loss over all pairs of the batch (Hadsell et al. 2006).

    Mean of ``pair_margin`` over the positive pairs plus its mean over the negative pairs;
    margins as in "A Metric Learning Reality Check" (m_pos = 0, m_neg = 1 on unit vectors).
    """

    # (name, low, high, scale): the range bench.tuning searches for this loss
    search_space = (("neg_margin", 0.3, 1.5, "linear"),)

    def __init__(self, pos_margin: float = 0.0, neg_margin: float = 1.0) -> None:
        super().__init__()
        self.pos_margin, self.neg_margin = pos_margin, neg_margin

    def compute(
        self, embeddings: torch.Tensor, labels: torch.Tensor, tuples: Tuples | None
    ) -> MetricLossOutput:
        n = len(labels)
        dist = pairwise_squared_distance(embeddings).clamp(min=1e-12).sqrt()  # ‖x̂_i − x̂_j‖
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        off_diag = ~torch.eye(n, dtype=torch.bool, device=labels.device)
        losses = pair_margin(dist, same, self.pos_margin, self.neg_margin)
        pos, neg = same & off_diag, ~same
        loss = (losses * pos).sum() / pos.sum().clamp(min=1) + (
            losses * neg
        ).sum() / neg.sum().clamp(min=1)
        pairs = pos | neg
        active = ((losses > 0) & pairs).sum().item() / max(pairs.sum().item(), 1)
        return MetricLossOutput(loss, active)


@register("loss", "ntxent", display="NT-Xent")
class NTXentLoss(MetricLoss):
    """NT-Xent over labels: InfoNCE (the core ``info_nce_logits``) for every positive pair.

    Chen et al., "SimCLR", ICML 2020, eq. 1, with labels defining the positives as in
    Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020: for each positive pair
    (a, p), L = −log e^{cos(a,p)/τ} / (e^{cos(a,p)/τ} + Σ_{n: y_n ≠ y_a} e^{cos(a,n)/τ}),
    averaged over the pairs. τ = 0.1 (SupCon's value).
    """

    search_space = (("temperature", 0.02, 1.0, "log"),)

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def compute(
        self, embeddings: torch.Tensor, labels: torch.Tensor, tuples: Tuples | None
    ) -> MetricLossOutput:
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        pos = same.clone()
        pos.fill_diagonal_(False)
        anchor, positive = pos.nonzero(as_tuple=True)
        if len(anchor) == 0:
            return MetricLossOutput(embeddings.sum() * 0, 0.0)
        xn = F.normalize(embeddings, dim=-1)
        logits = xn @ xn.T / self.temperature  # (N, N): cos/τ, computed once for all pairs
        # an anchor's negatives are the same for each of its positives: reduce them once per
        # anchor (log Σ e^neg), then each pair is InfoNCE with that one pooled negative
        neg_lse = torch.logsumexp(logits.masked_fill(same, float("-inf")), dim=1, keepdim=True)
        rows = info_nce_logits(logits[anchor, positive], neg_lse[anchor])
        return MetricLossOutput(rows.mean(), None)


@register("loss", "triplet", display="Triplet")
class TripletLoss(MetricLoss):
    """Triplet margin loss (the core ``triplet_margin``) on the miner's tuples.

    FaceNet (Schroff et al. 2015) eq. 1, margin α = 0.2 on squared distances of unit
    vectors; the mean over every (anchor, positive, negative) triplet the miner kept
    (all valid triplets when no miner is given).
    """

    uses_miner = True
    search_space = (("margin", 0.01, 1.0, "linear"),)

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def compute(
        self, embeddings: torch.Tensor, labels: torch.Tensor, tuples: Tuples | None
    ) -> MetricLossOutput:
        t = all_tuples(labels) if tuples is None else tuples
        total = int(torch.count_nonzero(t.negative_mask)) if len(t) else 0  # triplets
        if total == 0:
            return MetricLossOutput(embeddings.sum() * 0, 0.0)
        n = len(labels)
        if total <= 2 * n:  # about one triplet per sample (batch-hard, random): rows of x
            row, neg = t.negative_mask.nonzero(as_tuple=True)  # one entry per triplet
            xn = F.normalize(embeddings, dim=-1)  # once, not per gathered row
            a, p, ng = (xn.index_select(0, i) for i in (t.anchor[row], t.positive[row], neg))
            d_ap, d_an = (a - p).pow(2).sum(-1), (a - ng).pow(2).sum(-1, keepdim=True)
            ones = torch.ones_like(d_an)
            rows = triplet_margin_distances(d_ap, d_an, ones, self.margin, "all")  # (T,)
            return MetricLossOutput(rows.mean(), int(torch.count_nonzero(rows)) / total)
        # entries of the batch's (N, N) distance matrix instead of an (M, N, D) tensor
        d = pairwise_squared_distance(embeddings).reshape(-1)  # flat: gather's backward is fast
        d_ap = d.gather(0, t.anchor * n + t.positive)  # (M,)
        if total * 8 < t.negative_mask.numel():  # few negatives per row (batch-hard, random)
            row, neg = t.negative_mask.nonzero(as_tuple=True)  # one entry per triplet
            d_an = d.gather(0, t.anchor[row] * n + neg).unsqueeze(1)  # (T, 1)
            ones = torch.ones_like(d_an)
            rows = triplet_margin_distances(d_ap[row], d_an, ones, self.margin, "all")  # (T,)
            return MetricLossOutput(rows.mean(), int(torch.count_nonzero(rows)) / total)
        d_an = d.view(n, n).index_select(0, t.anchor)  # (M, N): each row's distances
        weight = t.negative_mask.to(d.dtype)
        rows = triplet_margin_distances(d_ap, d_an, weight, self.margin, "all")
        loss = (rows * weight.sum(dim=1)).sum() / total  # row means back to the mean
        with torch.no_grad():
            hinge = F.relu(d_ap.unsqueeze(1) - d_an + self.margin) * weight
        return MetricLossOutput(loss, int(torch.count_nonzero(hinge)) / total)


class _ProxyLoss(MetricLoss):
    needs_proxies = True
    requires = ("num_classes", "embedding_dim")  # context from the task: one proxy per class

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__()
        if num_classes < 2 or embedding_dim < 1:
            raise ValueError(
                f"{type(self).__name__} needs num_classes ≥ 2 and embedding_dim ≥ 1; got "
                f"{num_classes} and {embedding_dim}"
            )
        # one learnable proxy per class, N(0, 1) init (unit-normalised where used)
        self.proxies = nn.Parameter(torch.randn(num_classes, embedding_dim))

    def _check_labels(self, labels: torch.Tensor) -> None:
        if labels.min() < 0 or labels.max() >= len(self.proxies):
            raise ValueError(
                f"labels must be class indices in [0, {len(self.proxies)}); got "
                f"{labels.min().item()}..{labels.max().item()}"
            )


@register("loss", "proxy_nca", display="Proxy-NCA")
class ProxyNCALoss(_ProxyLoss):
    """Proxy-NCA (the core ``proxy_nca``): softmax over distances to learnable class proxies.

    Movshovitz-Attias et al., ICCV 2017; with the positive proxy in the denominator
    (L ≥ 0, as pytorch-metric-learning and Proxy-NCA++ do) and a softmax scale s on the
    squared distances (s = 1 is the paper's unscaled form). Mean over the batch.
    """

    search_space = (("scale", 1.0, 64.0, "log"),)

    def __init__(self, num_classes: int, embedding_dim: int, scale: float = 1.0) -> None:
        super().__init__(num_classes, embedding_dim)
        self.scale = scale

    def compute(
        self, embeddings: torch.Tensor, labels: torch.Tensor, tuples: Tuples | None
    ) -> MetricLossOutput:
        self._check_labels(labels)
        rows = proxy_nca(embeddings, self.proxies, labels, self.scale, exclude_positive=False)
        return MetricLossOutput(rows.mean(), None)


@register("loss", "proxy_anchor", display="Proxy-Anchor")
class ProxyAnchorLoss(_ProxyLoss):
    """Proxy-Anchor (the core ``proxy_anchor``), Kim et al. CVPR 2020: α = 32, δ = 0.1."""

    search_space = (("alpha", 4.0, 128.0, "log"),)

    def __init__(
        self, num_classes: int, embedding_dim: int, alpha: float = 32.0, delta: float = 0.1
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        self.alpha, self.delta = alpha, delta
        # the paper initialises proxies with Kaiming normal (fan-out)
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")

    def compute(
        self, embeddings: torch.Tensor, labels: torch.Tensor, tuples: Tuples | None
    ) -> MetricLossOutput:
        self._check_labels(labels)
        loss = proxy_anchor(embeddings, self.proxies, labels, self.alpha, self.delta)
        return MetricLossOutput(loss, None)
