"""Speed cases: our metric-learning losses and miners against pytorch-metric-learning (PML).

Each timed call is one training step of the loss alone: (mine,) forward, backward, on a
fixed batch of embeddings (D = 128) whose labels form a P×K batch (K = 4 samples per
class, P = B/4 classes, shuffled), as the speaker task draws them. PML is configured to
compute the same number: squared Euclidean distance of unit vectors (LpDistance(power=2))
and the mean over all triplets (MeanReducer) for the triplet rows, the same proxies,
α and δ for Proxy-Anchor, the same τ for NT-Xent.

The largest sizes are set by the peer: PML's all-triplets builds a B³ mask and its NT-Xent a
(positive pairs)×(negative pairs) matrix, so those rows stop at B = 768 and B = 256.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from bench.speed.case import SIZES, SpeedCase, Workload, close, import_peer, register_case
from methods.metric_losses import NTXentLoss, ProxyAnchorLoss, TripletLoss
from methods.miners import AllTriplets, BatchHardMiner

DIM = 128
PER_CLASS = 4  # K of the P×K batch
MARGIN = 0.2  # triplet margin (our default, FaceNet's α)
ALPHA, DELTA = 32.0, 0.1  # Proxy-Anchor (our defaults, the paper's)
TEMPERATURE = 0.1  # NT-Xent (our default, SupCon's τ)
GROUP = "metric learning"
TAGS = ("metric_learning", "pytorch-metric-learning")


def _pml() -> SimpleNamespace:
    """PML's distances, losses, miners and reducers, or PeerMissing."""
    import_peer("pytorch_metric_learning", "pytorch-metric-learning")
    parts = ("distances", "losses", "miners", "reducers")
    return SimpleNamespace(
        **{m: import_peer(f"pytorch_metric_learning.{m}", "pytorch-metric-learning") for m in parts}
    )


def _batch(batch: int, device: torch.device, seed: int = 0):
    """Seeded embeddings (B, D) that require grad and P×K labels (B,), shuffled."""
    if batch % PER_CLASS:
        raise ValueError(f"batch {batch} is not a multiple of {PER_CLASS} samples per class")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, DIM, generator=g)
    labels = torch.arange(batch // PER_CLASS).repeat_interleave(PER_CLASS)
    labels = labels[torch.randperm(batch, generator=g)]
    return x.to(device).requires_grad_(), labels.to(device)


@dataclass
class LossPair:
    """Our loss and PML's on the same inputs, before they are wrapped into timed steps."""

    ours: Callable[[], torch.Tensor]  # forward only: the scalar loss
    peer: Callable[[], torch.Tensor]
    grads_ours: tuple[torch.Tensor, ...]  # leaves each backward fills: embeddings first
    grads_peer: tuple[torch.Tensor, ...]  # (the same embeddings; a proxy loss's own proxies)
    batch: int

    def workload(self) -> Workload:
        return Workload(
            ours=_step(self.ours, self.grads_ours),
            peer=_step(self.peer, self.grads_peer),
            shape=f"B={self.batch} D={DIM} P={self.batch // PER_CLASS} classes x K={PER_CLASS}",
            items=self.batch,
            agree=close(),
        )


def _step(
    loss_of: Callable[[], torch.Tensor], leaves: tuple[torch.Tensor, ...]
) -> Callable[[], torch.Tensor]:
    """A timed call: clear the grads, forward, backward; returns the detached loss."""

    def call() -> torch.Tensor:
        for leaf in leaves:
            leaf.grad = None
        loss = loss_of()
        loss.backward()
        return loss.detach()

    return call


def _sizes(*batches: int) -> dict[str, dict[str, int]]:
    return {label: {"batch": b} for label, b in zip(SIZES, batches, strict=True)}


# ---- the four pairs ------------------------------------------------------------------------
def triplet_all(device: torch.device, batch: int) -> LossPair:
    """Ours: AllTriplets miner + TripletLoss. PML: TripletMarginLoss on all its triplets."""
    pml = _pml()
    x, y = _batch(batch, device)
    loss, miner = TripletLoss(margin=MARGIN), AllTriplets()
    peer = pml.losses.TripletMarginLoss(
        margin=MARGIN,
        distance=pml.distances.LpDistance(power=2),
        reducer=pml.reducers.MeanReducer(),
    )
    return LossPair(lambda: loss(x, y, miner(x, y)).loss, lambda: peer(x, y), (x,), (x,), batch)


def triplet_hard(device: torch.device, batch: int) -> LossPair:
    """Ours: BatchHardMiner + TripletLoss. PML: BatchHardMiner + TripletMarginLoss."""
    pml = _pml()
    x, y = _batch(batch, device)
    loss, miner = TripletLoss(margin=MARGIN), BatchHardMiner()
    sq = pml.distances.LpDistance(power=2)
    peer_miner = pml.miners.BatchHardMiner(distance=sq)
    peer = pml.losses.TripletMarginLoss(
        margin=MARGIN, distance=sq, reducer=pml.reducers.MeanReducer()
    )
    return LossPair(
        lambda: loss(x, y, miner(x, y)).loss,
        lambda: peer(x, y, peer_miner(x, y)),
        (x,),
        (x,),
        batch,
    )


def proxy_anchor(device: torch.device, batch: int) -> LossPair:
    """Ours and PML's ProxyAnchorLoss with the same proxies (one per class), α, δ."""
    pml = _pml()
    x, y = _batch(batch, device)
    classes = batch // PER_CLASS
    torch.manual_seed(0)
    loss = ProxyAnchorLoss(classes, DIM, alpha=ALPHA, delta=DELTA).to(device)
    peer = pml.losses.ProxyAnchorLoss(classes, DIM, margin=DELTA, alpha=ALPHA).to(device)
    with torch.no_grad():
        peer.proxies.copy_(loss.proxies)
    return LossPair(
        lambda: loss(x, y).loss, lambda: peer(x, y), (x, loss.proxies), (x, peer.proxies), batch
    )


def ntxent(device: torch.device, batch: int) -> LossPair:
    """Ours and PML's NTXentLoss (mean over positive pairs), same τ."""
    pml = _pml()
    x, y = _batch(batch, device)
    loss = NTXentLoss(temperature=TEMPERATURE)
    peer = pml.losses.NTXentLoss(temperature=TEMPERATURE, reducer=pml.reducers.MeanReducer())
    return LossPair(lambda: loss(x, y).loss, lambda: peer(x, y), (x,), (x,), batch)


def _builder(pair: Callable[..., LossPair]) -> Callable[..., Workload]:
    def build(device: torch.device, batch: int) -> Workload:
        return pair(device, batch).workload()

    build.__doc__ = pair.__doc__
    return build


TRIPLET_ALL = register_case(
    SpeedCase(
        name="triplet loss, all triplets",
        peer="pytorch-metric-learning TripletMarginLoss",
        sizes=_sizes(32, 128, 512, 768),
        build=_builder(triplet_all),
        trained=True,
        group=GROUP,
        notes="PML's own all-triplets with MeanReducer; squared distance of unit vectors; the mean "
        "over all B·(K−1)·(B−K) triplets",
        tags=TAGS,
    )
)
TRIPLET_HARD = register_case(
    SpeedCase(
        name="triplet loss, batch-hard mining",
        peer="pytorch-metric-learning TripletMarginLoss + BatchHardMiner",
        sizes=_sizes(32, 256, 1024, 4096),
        build=_builder(triplet_hard),
        trained=True,
        group=GROUP,
        notes="one triplet per anchor: farthest positive, closest negative; PML with "
        "LpDistance(power=2) and MeanReducer",
        tags=TAGS,
    )
)
PROXY_ANCHOR = register_case(
    SpeedCase(
        name="Proxy-Anchor loss",
        peer="pytorch-metric-learning ProxyAnchorLoss",
        sizes=_sizes(32, 256, 1024, 4096),
        build=_builder(proxy_anchor),
        trained=True,
        group=GROUP,
        notes="B/4 proxies (one per class); grads to embeddings and proxies",
        tags=TAGS,
    )
)
NTXENT = register_case(
    SpeedCase(
        name="NT-Xent loss",
        peer="pytorch-metric-learning NTXentLoss",
        sizes=_sizes(32, 64, 128, 256),
        build=_builder(ntxent),
        trained=True,
        group=GROUP,
        notes="labels define the positives; mean over positive pairs (PML MeanReducer); PML's "
        "cost grows as (positive pairs)×(negative pairs), so the sizes are smaller",
        tags=TAGS,
    )
)
