"""Loss cores on (anchor, positive, negatives) tuples, shared by SSL objectives and metric learning.

Each core is a pure function returning one loss per row (N,), so the caller chooses the
reduction. The SSL objectives (methods/ssl_objectives.py) take the anchor from the context
network and the positive/negatives from the (quantised) targets; a metric-learning miner
builds the same tuples from labels.

Shapes: anchor (N, D), positive (N, D), negatives (N, K, D); ``negative_mask`` (N, K) bool
marks the *valid* negatives (True = use it). A row with no valid negative has no tuple:
its loss is 0 (and contributes no gradient).

Notation: â = a / ‖a‖ (L2-normalised), cos(a, b) = â·b̂, d(a, b) = ‖â − b̂‖² = 2 − 2 cos(a, b).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["info_nce", "proxy_nca", "squared_distance", "triplet_margin"]

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
    _check_tuple(anchor, positive, negatives, negative_mask)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    candidates = torch.cat([positive.unsqueeze(1), negatives], dim=1)  # (N, 1+K, D): [q, Q]
    logits = F.cosine_similarity(anchor.unsqueeze(1), candidates, dim=-1) / temperature  # sim/κ
    if negative_mask is not None:
        keep = torch.cat([negative_mask.new_ones(len(anchor), 1), negative_mask], dim=1)
        logits = logits.masked_fill(~keep, float("-inf"))
    return torch.logsumexp(logits, dim=1) - logits[:, 0]  # −log softmax(logits)[positive]


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
    _check_tuple(anchor, positive, negatives, negative_mask)
    if mining not in TRIPLET_MINING:
        raise ValueError(f"unknown mining {mining!r}; choose one of {', '.join(TRIPLET_MINING)}")
    valid = _valid(negatives, negative_mask)  # (N, K)
    d_ap = squared_distance(anchor, positive)  # (N,)
    d_an = squared_distance(anchor.unsqueeze(1), negatives)  # (N, K)
    has_negative = valid.any(dim=1)
    if mining == "all":
        hinge = F.relu(d_ap.unsqueeze(1) - d_an + margin) * valid  # max(0, d_ap − d_an + m)
        return hinge.sum(dim=1) / valid.sum(dim=1).clamp(min=1)
    if mining == "hardest":
        pick = d_an.masked_fill(~valid, float("inf")).argmin(dim=1)  # closest valid negative
    else:  # "random": argmax of i.i.d. uniform scores over the valid entries is uniform
        scores = torch.rand(valid.shape, generator=generator, device=valid.device)
        pick = scores.masked_fill(~valid, -1.0).argmax(dim=1)
    d_an = d_an.gather(1, pick.unsqueeze(1)).squeeze(1)
    return F.relu(d_ap - d_an + margin) * has_negative  # max(0, d(a,p) − d(a,n) + margin)


def proxy_nca(
    anchor: torch.Tensor, proxies: torch.Tensor, positive_index: torch.Tensor
) -> torch.Tensor:
    """Proxy-NCA, one value per row (N,).

    Movshovitz-Attias, Toshev, Leung, Ioffe, Singh, "No Fuss Distance Metric Learning using
    Proxies", ICCV 2017, eq. 6 (unscaled): L = −log exp(−d(a, p_y)) / Σ_{z≠y} exp(−d(a, p_z)),
    d = squared L2 distance of L2-normalised vectors. As in the paper, the denominator
    excludes the positive proxy, so L is not bounded below by 0: its minimum is
    log(P − 1) − 4 (a = p_y, every other proxy at −a). Needs P ≥ 2 proxies.
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
    if proxies.shape[0] < 2:
        raise ValueError(
            "proxy_nca needs at least 2 proxies (the denominator excludes the positive)"
        )
    d = squared_distance(anchor.unsqueeze(1), proxies.unsqueeze(0))  # (N, P): d(a, p_z)
    y = positive_index.long().unsqueeze(1)
    d_pos = d.gather(1, y).squeeze(1)  # d(a, p_y)
    others = (-d).scatter(1, y, float("-inf"))  # −d(a, p_z) for z ≠ y
    return d_pos + torch.logsumexp(others, dim=1)  # −log e^{−d_y} / Σ_{z≠y} e^{−d_z}


# ---- helpers ------------------------------------------------------------------------------
def _valid(negatives: torch.Tensor, negative_mask: torch.Tensor | None) -> torch.Tensor:
    if negative_mask is None:
        return torch.ones(negatives.shape[:2], dtype=torch.bool, device=negatives.device)
    return negative_mask


def _check_tuple(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    negative_mask: torch.Tensor | None,
) -> None:
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
