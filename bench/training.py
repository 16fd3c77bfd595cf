"""The one training loop of the suite, its learning-rate schedules and its timing.

Every task trains through ``train``: it gives a ``forward(step) -> StepOutput`` (one batch
and its loss) and an ``update`` (by default: zero the gradients, backward, clip, step);
the loop owns the rest that used to be written once per task: the progress bar, the
finite-loss check (a NaN or inf loss fails the cell with the step number and the last
finite loss), the per-step and evaluation curves, and the timing (warm-up steps skipped,
median step, samples/s, peak memory, FLOPs and MFU when the task counts them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bench import harness
from bench.context import RunContext

Schedule = Callable[[int, float], float]  # (step, 0-based; peak rate) -> learning rate


# ---- learning-rate schedules ----------------------------------------------------------
def warmup_linear_decay(total: int, warmup_fraction: float) -> Schedule:
    """Linear warm-up over ``warmup_fraction`` of ``total`` steps, then linear decay to 0
    (wav2vec 2.0's fine-tuning schedule without the hold stage)."""
    warm = max(1, int(total * warmup_fraction))

    def lr(step: int, peak: float) -> float:
        if step < warm:
            return peak * (step + 1) / warm
        return peak * max(0.0, (total - step) / max(1, total - warm))

    return lr


def warmup_hold_decay(
    total: int, warmup_fraction: float = 0.05, decay_from: float = 0.7, floor: float = 0.1
) -> Schedule:
    """Warm up linearly over ``warmup_fraction`` of the run, hold the peak, then decay
    linearly from ``decay_from`` of the run down to ``floor`` x the peak."""
    warm = max(1, int(total * warmup_fraction))
    start = int(decay_from * total)

    def lr(step: int, peak: float) -> float:
        if step < warm:
            return peak * (step + 1) / warm
        if step < start:
            return peak
        return peak * max(floor, 1 - (step - start) / max(1, total - start))

    return lr


# ---- one step and its update ------------------------------------------------------------
@dataclass
class StepOutput:
    """What a task's forward returns for one training step."""

    loss: torch.Tensor  # the loss to back-propagate (a scalar)
    items: int  # samples in the batch (for samples/s)
    logs: dict[str, float] = field(default_factory=dict)  # per-step curve values
    extra: object = None  # anything the update needs (e.g. a discriminator loss)


Update = Callable[[StepOutput, int], None]


def sgd_update(
    optimizer: torch.optim.Optimizer,
    clip_grad_norm: float | None = None,
    after: Callable[[int], None] | None = None,
) -> Update:
    """The usual update: zero the gradients, backward, clip (optional), step, ``after``."""
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def update(out: StepOutput, step: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
        optimizer.step()
        if after is not None:
            after(step + 1)

    return update


@dataclass
class TrainResult:
    curves: dict[str, list]
    timing: dict[str, float | None]


# ---- the loop ---------------------------------------------------------------------------
def train(
    forward: Callable[[int], StepOutput],
    steps: int,
    ctx: RunContext,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    update: Update | None = None,
    schedule: Schedule | None = None,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    eval_steps: set[int] | None = None,
    eval_every: int = 0,
    eval_key: str = "step",
    loss_key: str = "train_loss",
    desc: str = "train",
    warmup: int | None = None,
) -> TrainResult:
    """Run ``steps`` training steps and return their curves and timing.

    - ``forward(step)`` makes the batch and returns its loss (timed with the update);
    - ``update(out, step)`` changes the weights; default ``sgd_update(optimizer)``;
    - ``schedule(step, peak)`` sets each optimizer group's rate from its initial one;
    - ``evaluate(step_done)`` returns curve points; it runs after the steps in
      ``eval_steps`` (1-based counts of steps done), every ``eval_every`` steps, and after
      the last step; the counts go to ``curves[eval_key]``.
    The first ``warmup`` steps (default min(3, steps // 4)) are left out of the timing.
    """
    if steps < 0:
        raise ValueError(f"steps must be ≥ 0 (got {steps})")
    if update is None:
        if optimizer is None:
            raise ValueError("train() needs an optimizer or an update function")
        update = sgd_update(optimizer)
    base_lrs = [g["lr"] for g in optimizer.param_groups] if optimizer is not None else []
    timer = harness.StepTimer(ctx.device, skip=min(3, steps // 4) if warmup is None else warmup)
    harness.reset_peak_memory(ctx.device)
    curves: dict[str, list] = {loss_key: []}
    last_finite: float | None = None
    bar = ctx.progress(range(steps), desc=desc, unit="step")
    for step in bar:
        if schedule is not None and optimizer is not None:
            for group, peak in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = schedule(step, peak)
        with timer.step(items=0) as timed:
            out = forward(step)
            value = float(out.loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"{desc}: loss became {value} at step {step} "
                    f"(last finite loss {last_finite}); lower the learning rate or turn --amp off"
                )
            update(out, step)
            timed.items = out.items
        last_finite = value
        curves[loss_key].append(value)
        for name, v in out.logs.items():
            curves.setdefault(name, []).append(v)
        done = step + 1
        due = (eval_steps is not None and done in eval_steps) or (
            eval_every and done % eval_every == 0
        )
        if evaluate is not None and (due or done == steps):
            curves.setdefault(eval_key, []).append(done)
            for name, v in evaluate(done).items():
                curves.setdefault(name, []).append(v)
        bar.set_postfix(loss=f"{value:.3f}")
    return TrainResult(curves=curves, timing=timing_of(timer, ctx))


def timing_of(timer: harness.StepTimer, ctx: RunContext) -> dict[str, float | None]:
    """The timing dict of a finished loop (median/IQR step, samples/s, peak memory)."""
    step = timer.summary()
    return {
        "train_samples_per_s": timer.items_per_s(),
        "step_ms_median": step.median_ms if step else None,
        "step_ms_iqr": step.iqr_ms if step else None,
        "peak_mem_mb": harness.peak_memory_mb(ctx.device),
    }


def flops_timing(
    forward: Callable[[], object], items: int, ctx: RunContext, samples_per_s: float | None
) -> dict[str, float | None]:
    """FLOPs per training sample (forward x 3 for forward + backward) and the MFU they give
    at ``samples_per_s``; ``forward`` runs once on ``items`` samples under the counter."""
    per_sample = 3 * harness.count_flops(forward) / items
    mfu = per_sample * samples_per_s / ctx.peak_flops if samples_per_s else None
    return {"flops_per_sample": per_sample, "mfu": mfu}
