"""Training a small image classifier by minibatch epochs: the loop every digits task shares.

``fit_classifier`` runs ``bench.training.train`` over shuffled epochs of in-memory tensors
and returns the curves (per-epoch mean training loss, validation NLL and accuracy) and the
timing. What differs between tasks is passed in:

- ``loss_fn(logits, labels, idx)``: the loss of a batch, given the indices of its items in
  the training tensors (e.g. to look up a teacher's logits for distillation); default
  cross-entropy with ``label_smoothing``;
- ``augment(x, generator)``: a batch transform applied in training only;
- ``params``: the parameters that are trained (e.g. the head only); default all.

A cell's generator fixes the epoch orders, so the same seed gives the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench import harness
from bench.context import RunContext
from bench.training import StepOutput, TrainResult, flops_timing, train

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    batch_size: int = 64
    lr: float = 3e-3  # Adam
    weight_decay: float = 0.0  # AdamW's decoupled decay when > 0
    label_smoothing: float = 0.0  # of the default cross-entropy loss
    eval_every: int = 10  # epochs between validation points

    def validate(self) -> None:
        if min(self.epochs, self.batch_size, self.eval_every) < 1 or self.lr <= 0:
            raise ValueError(f"invalid classifier training config: {self}")
        if self.weight_decay < 0 or not 0 <= self.label_smoothing < 1:
            raise ValueError(f"weight_decay must be >= 0 and label_smoothing in [0, 1), got {self}")


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, ctx: RunContext) -> torch.Tensor:
    """Logits of ``x`` in eval mode, as float32 on the CPU."""
    model.eval()
    with ctx.autocast():
        return model(x.to(ctx.device)).float().cpu()


def classifier_timing(
    model: nn.Module,
    x_test: torch.Tensor,
    ctx: RunContext,
    timing: dict[str, float | None],
    repeats: int = 5,
) -> dict[str, float | None]:
    """``timing`` (a training loop's) plus the evaluation throughput on ``x_test`` (median of
    ``repeats`` timed passes) and the FLOPs/MFU of a batch of 16 test images."""
    x_test = x_test.to(ctx.device)
    out = dict(timing)
    eval_ms = harness.time_fn(
        lambda: predict(model, x_test, ctx), ctx.device, warmup=1, repeats=repeats
    ).median_ms
    out["eval_samples_per_s"] = len(x_test) / (eval_ms / 1e3)
    sample = x_test[:16]
    out |= flops_timing(lambda: model(sample), len(sample), ctx, out.get("train_samples_per_s"))
    return out


def fit_classifier(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    config: FitConfig,
    ctx: RunContext,
    *,
    valid: tuple[torch.Tensor, torch.Tensor] | None = None,
    loss_fn: LossFn | None = None,
    augment: Augment | None = None,
    params: Iterable[nn.Parameter] | None = None,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` (already on ``ctx.device``) for ``config.epochs`` epochs."""
    config.validate()
    device = ctx.device
    trained = list(model.parameters() if params is None else params)
    optimizer: torch.optim.Optimizer
    if config.weight_decay > 0:
        optimizer = torch.optim.AdamW(trained, lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.Adam(trained, lr=config.lr)
    x_train, y_train = x_train.to(device), y_train.to(device)
    n = len(y_train)
    if n == 0:
        raise ValueError(f"{desc}: the training split is empty")
    per_epoch = -(-n // config.batch_size)  # minibatches per pass over the train split
    generator = ctx.generator()
    order = torch.empty(0, dtype=torch.long)

    def default_loss(logits: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor):
        return F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)

    batch_loss = loss_fn or default_loss

    def forward(step: int) -> StepOutput:
        nonlocal order
        if step % per_epoch == 0:  # a new epoch: a new order
            order = torch.randperm(n, generator=generator).to(device)
        start = (step % per_epoch) * config.batch_size
        idx = order[start : start + config.batch_size]
        x = x_train[idx]
        if augment is not None:
            x = augment(x, generator)
        model.train()
        with ctx.autocast():
            logits = model(x).float()
        return StepOutput(batch_loss(logits, y_train[idx], idx), items=len(idx))

    evaluate = None
    if valid is not None:
        x_valid, y_valid = valid

        def evaluate(step: int) -> dict[str, float]:
            logits = predict(model, x_valid, ctx)
            return {
                "valid_nll": F.cross_entropy(logits, y_valid.cpu()).item(),
                "valid_accuracy": (logits.argmax(1) == y_valid.cpu()).double().mean().item(),
            }

    result = train(
        forward,
        config.epochs * per_epoch,
        ctx,
        optimizer=optimizer,
        evaluate=evaluate,
        eval_every=config.eval_every * per_epoch,
        eval_key="valid_step",
        desc=desc,
        warmup=3,
    )
    curves = result.curves
    losses = curves.pop("train_loss")
    sizes = [min(config.batch_size, n - k * config.batch_size) for k in range(per_epoch)]
    curves["train_loss"] = [  # the mean loss of each epoch
        sum(losses[e * per_epoch + k] * size for k, size in enumerate(sizes)) / n
        for e in range(config.epochs)
    ]
    if "valid_step" in curves:
        curves["valid_epoch"] = [s // per_epoch for s in curves.pop("valid_step")]
    model.eval()
    return result
