"""Loss cores on (anchor, positive, negatives) tuples, shared by SSL objectives and metric learning.

Each core is a pure function returning one loss per row (N,), so the caller chooses the
reduction. The SSL objectives (methods/ssl_objectives.py) take the anchor from the context
network and the positive/negatives from the (quantised) targets; a metric-learning miner
builds the same tuples from labels.

Shapes: anchor (N, D), positive (N, D), negatives (N, K, D); ``negative_mask`` (N, K) bool
marks the *valid* negatives (True = use it). A row with no valid negative has no tuple:
its loss is 0 (and contributes no gradient).

Notation: â = a / ‖a‖ (L2-normalised), cos(a, b) = â·b̂, d(a, b) = ‖â − b̂‖² = 2 − 2 cos(a, b).

The second half of the file registers the metric-learning losses (family "loss"): each takes
(embeddings (N, D), labels (N,)) and, for the tuple-based ones, the tuples a miner chose
(methods/miners.py); each calls one of the cores above, so SSL and metric learning share one
implementation per loss family.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.registry import register

__all__ = [
    "MetricLossOutput",
    "Tuples",
    "info_nce",
    "info_nce_logits",
    "pair_margin",
    "pairwise_squared_distance",
    "proxy_anchor",
    "proxy_nca",
    "squared_distance",
    "triplet_margin",
    "triplet_margin_distances",
]

TRIPLET_MINING = ("hardest", "random", "all")


def info_nce(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
    negative_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE with cosine similarity, one value per row (N,).

    Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive Coding", 2018;
    in the form of wav2vec 2.0 (Baevski et al., NeurIPS 2020), eq. 3:
    L = −log exp(sim(c, q)/κ) / Σ_{q̃ ∈ {q} ∪ Q} exp(sim(c, q̃)/κ), sim = cosine similarity.
    Negatives with ``negative_mask`` False get logit −inf, i.e. are left out of the sum
    (wav2vec 2.0 / transformers do this for negatives identical to the positive).
    """
    check_tuple(anchor, positive, negatives, negative_mask)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    candidates = torch.cat([positive.unsqueeze(1), negatives], dim=1)  # (N, 1+K, D): [q, Q]
    logits = F.cosine_similarity(anchor.unsqueeze(1), candidates, dim=-1) / temperature  # sim/κ
    return info_nce_logits(logits[:, 0], logits[:, 1:], negative_mask)


def info_nce_logits(
    positive: torch.Tensor, negatives: torch.Tensor, negative_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The InfoNCE step shared by ``info_nce`` and NT-Xent: −log softmax at the positive.

    ``positive`` (N,) and ``negatives`` (N, K) are logits (sim/κ); L = log(e^pos + Σ e^neg)
    − pos. Masked-out negatives get −inf; a row with none left has loss 0.
    """
    if negative_mask is not None:
        negatives = negatives.masked_fill(~negative_mask, float("-inf"))
    return torch.logaddexp(positive, torch.logsumexp(negatives, dim=1)) - positive


def squared_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d(x, y) = ‖x̂ − ŷ‖² between L2-normalised vectors (last dim), broadcasting."""
    return (F.normalize(x, dim=-1) - F.normalize(y, dim=-1)).pow(2).sum(-1)  # = 2 − 2 cos


def triplet_margin(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    margin: float,
    mining: str = "hardest",
    generator: torch.Generator | None = None,
    negative_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triplet margin loss on normalised embeddings, one value per row (N,).

    Schroff, Kalenichenko, Philbin, "FaceNet", CVPR 2015, eq. 1 (paper margin α = 0.2):
    L = max(0, d(a, p) − d(a, n) + margin), d = squared L2 distance of L2-normalised vectors.
    ``mining`` picks n among the row's valid negatives: "hardest" = smallest d(a, n)
    (batch-hard, Hermans, Beyer, Leibe, "In Defense of the Triplet Loss", 2017), "random" =
    one uniformly at random (drawn from ``generator``), "all" = mean of L over all of them.
    """
    check_tuple(anchor, positive, negatives, negative_mask)
    if mining not in TRIPLET_MINING:
        raise ValueError(f"unknown mining {mining!r}; choose one of {', '.join(TRIPLET_MINING)}")
    valid = _valid(negatives, negative_mask)  # (N, K)
    d_ap = squared_distance(anchor, positive)  # (N,)
    d_an = squared_distance(anchor.unsqueeze(1), negatives)  # (N, K)
    return triplet_margin_distances(d_ap, d_an, valid, margin, mining, generator)


def triplet_margin_distances(
    d_ap: torch.Tensor,
    d_an: torch.Tensor,
    valid: torch.Tensor,
    margin: float,
    mining: str = "all",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The hinge and the negative pick of ``triplet_margin``, on distances (N,) and (N, K).

    ``valid`` (N, K) marks the usable negatives: bool, or (mining "all" only) float 0/1.

    Shared by the SSL core (distances to its own negatives) and the metric-learning
    TripletLoss (rows of the batch's distance matrix, so no (N, K, D) tensor is built).
    """
    if mining not in TRIPLET_MINING:
        raise ValueError(f"unknown mining {mining!r}; choose one of {', '.join(TRIPLET_MINING)}")
    if mining == "all":
        # float 0/1 weights: products and float sums are much faster than bool ops on CPU
        weight = valid if valid.is_floating_point() else valid.to(d_an.dtype)
        hinge = F.relu(d_ap.unsqueeze(1) - d_an + margin) * weight  # max(0, d_ap − d_an + m)
        return hinge.sum(dim=1) / weight.sum(dim=1).clamp(min=1)
    has_negative = valid.any(dim=1)
    if mining == "hardest":
        pick = d_an.masked_fill(~valid, float("inf")).argmin(dim=1)  # closest valid negative
    else:  # "random": argmax of i.i.d. uniform scores over the valid entries is uniform
        scores = torch.rand(valid.shape, generator=generator, device=valid.device)
        pick = scores.masked_fill(~valid, -1.0).argmax(dim=1)
    d_an = d_an.gather(1, pick.unsqueeze(1)).squeeze(1)
    return F.relu(d_ap - d_an + margin) * has_negative  # max(0, d(a,p) − d(a,n) + margin)


def proxy_nca(
    anchor: torch.Tensor,
    proxies: torch.Tensor,
    positive_index: torch.Tensor,
    scale: float = 1.0,
    exclude_positive: bool = True,
) -> torch.Tensor:
    """Proxy-NCA, one value per row (N,).

    Movshovitz-Attias, Toshev, Leung, Ioffe, Singh, "No Fuss Distance Metric Learning using
    Proxies", ICCV 2017, eq. 6 (unscaled): L = −log exp(−d(a, p_y)) / Σ_{z≠y} exp(−d(a, p_z)),
    d = squared L2 distance of L2-normalised vectors. As in the paper, the denominator
    excludes the positive proxy, so L is not bounded below by 0: its minimum is
    log(P − 1) − 4 (a = p_y, every other proxy at −a). Needs P ≥ 2 proxies.
    ``scale`` s multiplies the distances (softmax scale: exp(−s·d)); ``exclude_positive=False``
    puts the positive proxy into the denominator too (a softmax over all proxies, L ≥ 0, the
    form of pytorch-metric-learning's ProxyNCALoss and of Proxy-NCA++).
    """
    if anchor.dim() != 2 or proxies.dim() != 2 or anchor.shape[1] != proxies.shape[1]:
        raise ValueError(
            f"proxy_nca needs anchor (N, D) and proxies (P, D); got {tuple(anchor.shape)} "
            f"and {tuple(proxies.shape)}"
        )
    if positive_index.shape != anchor.shape[:1]:
        raise ValueError(
            f"positive_index must have shape ({anchor.shape[0]},), got "
            f"{tuple(positive_index.shape)}"
        )
    if exclude_positive and proxies.shape[0] < 2:
        raise ValueError(
            "proxy_nca needs at least 2 proxies (the denominator excludes the positive)"
        )
    d = scale * squared_distance(anchor.unsqueeze(1), proxies.unsqueeze(0))  # (N, P): s·d
    y = positive_index.long().unsqueeze(1)
    d_pos = d.gather(1, y).squeeze(1)  # d(a, p_y)
    others = (-d).scatter(1, y, float("-inf")) if exclude_positive else -d  # −d(a, p_z), z ≠ y
    return d_pos + torch.logsumexp(others, dim=1)  # −log e^{−d_y} / Σ_{z≠y} e^{−d_z}


def pair_margin(
    distance: torch.Tensor, same: torch.Tensor, pos_margin: float, neg_margin: float
) -> torch.Tensor:
    """Pair-margin contrastive loss of each pair, elementwise (any shape).

    Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an Invariant Mapping",
    CVPR 2006, in the margin form of Musgrave et al., "A Metric Learning Reality Check"
    (ECCV 2020): L = [d − m_pos]₊ for a positive pair, [m_neg − d]₊ for a negative pair,
    d = Euclidean distance ‖â − b̂‖ (not squared). ``same`` marks the positive pairs.
    """
    if distance.shape != same.shape or same.dtype != torch.bool:
        raise ValueError("pair_margin needs a distance tensor and a bool mask of the same shape")
    return torch.where(same, F.relu(distance - pos_margin), F.relu(neg_margin - distance))


def proxy_anchor(
    embeddings: torch.Tensor,
    proxies: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    delta: float,
) -> torch.Tensor:
    """Proxy-Anchor loss (a scalar).

    Kim, Kim, Cho, Kwak, "Proxy Anchor Loss for Deep Metric Learning", CVPR 2020, eq. 4:
    L = 1/|P⁺| Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{−α(s(x,p) − δ)})
      + 1/|P| Σ_{p∈P} log(1 + Σ_{x∈X_p⁻} e^{α(s(x,p) + δ)}),
    s = cosine similarity, P⁺ = proxies with a positive in the batch (paper α = 32, δ = 0.1).
    """
    if embeddings.dim() != 2 or proxies.dim() != 2 or embeddings.shape[1] != proxies.shape[1]:
        raise ValueError(
            f"proxy_anchor needs embeddings (N, D) and proxies (P, D); got "
            f"{tuple(embeddings.shape)} and {tuple(proxies.shape)}"
        )
    labels = labels.long()
    n_proxies = len(proxies)
    xn, pn = F.normalize(embeddings, dim=-1), F.normalize(proxies, dim=-1)
    # positive term: each x has one positive proxy, so it is a sum over N values grouped by
    # label, log(1 + Σ e^v) = m + log(e^{−m} + Σ e^{v−m}) with m = max(0, v...) per proxy
    sim = xn @ pn.T  # (N, P): s(x, p)
    v = -alpha * (sim.gather(1, labels.unsqueeze(1)).squeeze(1) - delta)  # (N,): −α(s − δ)
    with torch.no_grad():
        shift = v.new_zeros(n_proxies).scatter_reduce(0, labels, v, "amax")  # m, ≥ 0
    total = torch.exp(-shift).index_add(0, labels, torch.exp(v - shift[labels]))
    pos_lse = shift + torch.log(total)  # (P,): 0 for a proxy without positive
    with_pos = torch.bincount(labels, minlength=n_proxies) > 0
    # negative term: dense over (N, P); positives masked to −inf; log(1 + e^lse) = softplus
    own = labels.unsqueeze(1) == torch.arange(n_proxies, device=labels.device)
    neg_terms = (alpha * (sim + delta)).masked_fill(own, float("-inf"))
    neg_lse = F.softplus(torch.logsumexp(neg_terms, dim=0))  # (P,)
    return pos_lse.sum() / with_pos.sum().clamp(min=1) + neg_lse.mean()


def pairwise_squared_distance(x: torch.Tensor) -> torch.Tensor:
    """(N, N) matrix of d(x_i, x_j) = ‖x̂_i − x̂_j‖² = 2 − 2 cos, clamped at 0."""
    xn = F.normalize(x, dim=-1)
    return torch.addmm(xn.new_full((1,), 2.0), xn, xn.T, alpha=-2).clamp_(min=0)  # one pass


# ---- helpers ------------------------------------------------------------------------------
def _valid(negatives: torch.Tensor, negative_mask: torch.Tensor | None) -> torch.Tensor:
    if negative_mask is None:
        return torch.ones(negatives.shape[:2], dtype=torch.bool, device=negatives.device)
    return negative_mask


def check_tuple(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    negative_mask: torch.Tensor | None,
) -> None:
    """Shapes of an (anchor, positive, negatives) batch: (N, D), (N, D), (N, K, D), mask (N, K)."""
    if not all(isinstance(x, torch.Tensor) for x in (anchor, positive, negatives)):
        raise TypeError("anchor, positive and negatives must all be tensors (negatives: N, K, D)")
    if anchor.dim() != 2 or positive.shape != anchor.shape:
        raise ValueError(
            f"anchor and positive must both be (N, D); got {tuple(anchor.shape)} and "
            f"{tuple(positive.shape)}"
        )
    n, dim = anchor.shape
    if negatives.dim() != 3 or negatives.shape[0] != n or negatives.shape[2] != dim:
        raise ValueError(f"negatives must be ({n}, K, {dim}); got {tuple(negatives.shape)}")
    if negative_mask is not None and (
        negative_mask.dtype != torch.bool or negative_mask.shape != negatives.shape[:2]
    ):
        raise ValueError(
            f"negative_mask must be a bool tensor of shape {tuple(negatives.shape[:2])}; got "
            f"{negative_mask.dtype} {tuple(negative_mask.shape)}"
        )


# ---- metric learning: registered losses on (embeddings, labels) --------------------------
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

    def compute(self, embeddings, labels, tuples) -> MetricLossOutput:
        raise NotImplementedError


@register("loss", "contrastive")
class ContrastiveLoss(MetricLoss):
    """Pair-margin contrastive loss over all pairs of the batch (Hadsell et al. 2006).

    Mean of ``pair_margin`` over the positive pairs plus its mean over the negative pairs;
    margins as in "A Metric Learning Reality Check" (m_pos = 0, m_neg = 1 on unit vectors).
    """

    def __init__(self, pos_margin: float = 0.0, neg_margin: float = 1.0) -> None:
        super().__init__()
        self.pos_margin, self.neg_margin = pos_margin, neg_margin

    def compute(self, embeddings, labels, tuples) -> MetricLossOutput:
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


@register("loss", "ntxent")
class NTXentLoss(MetricLoss):
    """NT-Xent over labels: InfoNCE (the core ``info_nce_logits``) for every positive pair.

    Chen et al., "SimCLR", ICML 2020, eq. 1, with labels defining the positives as in
    Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020: for each positive pair
    (a, p), L = −log e^{cos(a,p)/τ} / (e^{cos(a,p)/τ} + Σ_{n: y_n ≠ y_a} e^{cos(a,n)/τ}),
    averaged over the pairs. τ = 0.1 (SupCon's value).
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def compute(self, embeddings, labels, tuples) -> MetricLossOutput:
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


@register("loss", "triplet")
class TripletLoss(MetricLoss):
    """Triplet margin loss (the core ``triplet_margin``) on the miner's tuples.

    FaceNet (Schroff et al. 2015) eq. 1, margin α = 0.2 on squared distances of unit
    vectors; the mean over every (anchor, positive, negative) triplet the miner kept
    (all valid triplets when no miner is given).
    """

    uses_miner = True

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def compute(self, embeddings, labels, tuples) -> MetricLossOutput:
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


@register("loss", "proxy_nca")
class ProxyNCALoss(_ProxyLoss):
    """Proxy-NCA (the core ``proxy_nca``): softmax over distances to learnable class proxies.

    Movshovitz-Attias et al., ICCV 2017; with the positive proxy in the denominator
    (L ≥ 0, as pytorch-metric-learning and Proxy-NCA++ do) and a softmax scale s on the
    squared distances (s = 1 is the paper's unscaled form). Mean over the batch.
    """

    def __init__(self, num_classes: int, embedding_dim: int, scale: float = 1.0) -> None:
        super().__init__(num_classes, embedding_dim)
        self.scale = scale

    def compute(self, embeddings, labels, tuples) -> MetricLossOutput:
        self._check_labels(labels)
        rows = proxy_nca(embeddings, self.proxies, labels, self.scale, exclude_positive=False)
        return MetricLossOutput(rows.mean(), None)


@register("loss", "proxy_anchor")
class ProxyAnchorLoss(_ProxyLoss):
    """Proxy-Anchor (the core ``proxy_anchor``), Kim et al. CVPR 2020: α = 32, δ = 0.1."""

    def __init__(
        self, num_classes: int, embedding_dim: int, alpha: float = 32.0, delta: float = 0.1
    ) -> None:
        super().__init__(num_classes, embedding_dim)
        self.alpha, self.delta = alpha, delta
        # the paper initialises proxies with Kaiming normal (fan-out)
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")

    def compute(self, embeddings, labels, tuples) -> MetricLossOutput:
        self._check_labels(labels)
        loss = proxy_anchor(embeddings, self.proxies, labels, self.alpha, self.delta)
        return MetricLossOutput(loss, None)


@register("loss", "untrained")
class Untrained(MetricLoss):
    """The baseline row: no loss, no training. Tasks evaluate the randomly initialised
    encoder as it is; calling this loss is an error."""

    def compute(self, embeddings, labels, tuples) -> MetricLossOutput:
        raise RuntimeError("the 'untrained' baseline is never trained; do not call its loss")
