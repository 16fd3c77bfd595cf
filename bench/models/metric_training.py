"""Training an embedding network with a registered metric-learning loss (and miner).

Shared by the speaker, prosody and digits tasks: the row's loss and miner are built with
``registry.build`` (each gets the context it declares: the proxy losses the number of
classes and the embedding width, the random miner a seeded generator), the loss's own
parameters (class proxies) learn in a faster Adam group, and the steps run through
``bench.training.train`` on the batches the task draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bench import registry
from bench.context import RunContext
from bench.training import StepOutput, TrainResult, train

__all__ = ["Batch", "build_loss_and_miner", "train_metric"]

Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]  # (the model's inputs, labels)
Miner = Callable[[torch.Tensor, torch.Tensor], Any]


def build_loss_and_miner(
    loss: str,
    miner: str | None,
    *,
    params: dict[str, Any] | None,
    num_classes: int,
    embedding_dim: int,
    generator: torch.Generator,
) -> tuple[nn.Module, Miner | None]:
    """The registered loss ``loss`` (with the task's ``params`` for it) and miner (None:
    the loss takes every tuple of the batch)."""
    loss_fn = registry.build(
        "loss", loss, params=params, num_classes=num_classes, embedding_dim=embedding_dim
    )
    mine = None if miner is None else registry.build("miner", miner, generator=generator)
    return loss_fn, mine


def train_metric(
    model: nn.Module,
    batch: Callable[[], Batch],
    loss_fn: nn.Module,
    miner: Miner | None,
    ctx: RunContext,
    *,
    steps: int,
    lr: float,
    proxy_lr_mult: float,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    eval_steps: set[int] | None = None,
    eval_every: int = 0,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` for ``steps`` Adam updates on ``batch()`` with ``loss_fn``.

    The curves are ``train_loss`` per step, ``active`` (the share of pairs or triplets
    with a non-zero loss) for the losses that report it, and ``evaluate``'s values at the
    counts in ``curves["step"]``."""
    loss_fn = loss_fn.to(ctx.device)
    groups = [{"params": model.parameters(), "lr": lr}]
    if list(loss_fn.parameters()):
        groups.append({"params": loss_fn.parameters(), "lr": lr * proxy_lr_mult})
    optimizer = torch.optim.Adam(groups)

    def forward(step: int) -> StepOutput:
        model.train()
        inputs, y = batch()
        with ctx.autocast():
            z = model(*inputs).float()
        out = loss_fn(z, y, miner(z, y) if miner is not None else None)
        logs = {} if out.active is None else {"active": out.active}
        return StepOutput(out.loss, items=len(y), logs=logs)

    return train(
        forward,
        steps,
        ctx,
        optimizer=optimizer,
        evaluate=evaluate,
        eval_steps=eval_steps,
        eval_every=eval_every,
        desc=desc,
    )
