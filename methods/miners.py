"""Triplet miners: turn a labelled batch into (anchor, positive, negatives) tuples.

A miner is called as ``miner(embeddings (N, D), labels (N,)) -> Tuples`` (methods.metric_losses):
one row per (anchor, positive) pair it keeps, with a boolean mask over the batch marking
that row's negatives. It looks at the embeddings without gradient; the loss
(methods.metric_losses.TripletLoss) then scores the chosen tuples. Distances are the loss's:
d = ‖x̂ − ŷ‖² between unit vectors. Everything is masks over the N×N distance matrix,
with no Python loop over the batch.
"""

from __future__ import annotations

import torch

from bench.registry import register
from methods.loss_cores import pairwise_squared_distance
from methods.metric_losses import Tuples, all_tuples

__all__ = ["AllTriplets", "BatchHardMiner", "Miner", "RandomMiner", "SemiHardMiner"]


class Miner:
    """Base of the registered miners."""

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Tuples:
        if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"{type(self).__name__} needs embeddings (N, D) and labels (N,); got "
                f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
            )
        with torch.no_grad():
            return self.mine(embeddings.detach(), labels)

    def mine(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Tuples:
        raise NotImplementedError


@register("miner", "all")
class AllTriplets(Miner):
    """Every valid triplet: each positive pair with every negative of its anchor."""

    def mine(self, embeddings, labels) -> Tuples:
        return all_tuples(labels)


@register("miner", "random")
class RandomMiner(Miner):
    """Each positive pair with one negative of its anchor drawn uniformly at random."""

    requires = ("generator",)  # context from the task: the cell's seeded torch generator

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def mine(self, embeddings, labels) -> Tuples:
        t = all_tuples(labels)
        # argmax of i.i.d. uniform scores over the valid entries is a uniform pick
        scores = torch.rand(t.negative_mask.shape, generator=self.generator)
        scores = scores.to(labels.device).masked_fill(~t.negative_mask, -1.0)
        pick = torch.zeros_like(t.negative_mask)
        pick.scatter_(1, scores.argmax(dim=1, keepdim=True), True)
        return Tuples(t.anchor, t.positive, pick & t.negative_mask)


@register("miner", "semihard")
class SemiHardMiner(Miner):
    """Semi-hard negatives: farther than the positive but inside the margin.

    Schroff et al., "FaceNet", CVPR 2015, eq. 4: d(a, p) < d(a, n) ≤ d(a, p) + α (α = 0.2,
    the triplet loss's margin). Keeps every semi-hard negative of each positive pair (as
    pytorch-metric-learning's TripletMarginMiner does); pairs with none get an empty row.
    """

    def __init__(self, margin: float = 0.2) -> None:
        self.margin = margin

    def mine(self, embeddings, labels) -> Tuples:
        t = all_tuples(labels)
        d = pairwise_squared_distance(embeddings)
        d_ap = d[t.anchor, t.positive].unsqueeze(1)  # (M, 1)
        d_an = d[t.anchor]  # (M, N)
        semi = (d_an > d_ap) & (d_an <= d_ap + self.margin)
        return Tuples(t.anchor, t.positive, t.negative_mask & semi)


@register("miner", "hardest")
class BatchHardMiner(Miner):
    """Batch-hard: per anchor, its farthest positive and its closest negative.

    Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person Re-Identification",
    2017, eq. 5. One row per anchor that has both a positive and a negative in the batch.
    """

    def mine(self, embeddings, labels) -> Tuples:
        d = pairwise_squared_distance(embeddings)  # in [0, 4]
        same = (labels.unsqueeze(0) == labels.unsqueeze(1)).to(d.dtype)  # float: fast ops
        n_same = same.sum(dim=1)  # counting the anchor itself
        keep = (n_same > 1) & (n_same < len(labels))  # has a positive and a negative
        # shift the pairs to skip out of [0, 4] and leave the others exactly as they are
        # (adding 0), so one argmax/argmin per row picks among the wanted pairs only
        to_pos = d.add(1 - same, alpha=-5.0)  # negatives → [−5, −1]
        to_pos.fill_diagonal_(float("-inf"))  # the anchor is not its own positive
        hardest_pos = to_pos.argmax(dim=1)
        hardest_neg = d.add(same, alpha=5.0).argmin(dim=1)  # positives → [5, 9]
        anchor = keep.nonzero(as_tuple=True)[0]
        mask = torch.zeros(len(anchor), len(labels), dtype=torch.bool, device=labels.device)
        mask[torch.arange(len(anchor), device=labels.device), hardest_neg[anchor]] = True
        return Tuples(anchor, hardest_pos[anchor], mask)
