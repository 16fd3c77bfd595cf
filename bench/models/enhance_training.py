"""Training a learned enhancer on random (noisy, clean) crops with a registered loss."""

from __future__ import annotations

import torch

from bench import registry
from bench.context import RunContext
from bench.data.noisy_pairs import PairSet, crop_batch
from bench.data.synthetic import SAMPLE_RATE
from bench.models.enhance_config import EnhanceConfig
from bench.training import StepOutput, sgd_update, train, warmup_linear_decay

__all__ = ["train_enhancer"]


def train_enhancer(
    model: torch.nn.Module, loss_name: str, pairs: PairSet, config: EnhanceConfig, ctx: RunContext
) -> tuple[list[float], dict[str, float | None]]:
    """Train ``model`` on random crops of ``pairs`` with the loss ``loss_name``; return the
    per-step losses and the timing."""
    loss_fn = registry.build("enh_loss", loss_name).to(ctx.device)
    rng = ctx.rng()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    crop = round(config.crop_seconds * SAMPLE_RATE)
    model.train()

    def forward(step: int) -> StepOutput:
        noisy, clean = crop_batch(pairs, rng, config.batch_size, crop)
        noisy, clean = noisy.to(ctx.device), clean.to(ctx.device)
        with ctx.autocast():
            estimate = model(noisy).float()
        return StepOutput(loss_fn(estimate, clean), items=config.batch_size)

    result = train(
        forward,
        config.steps,
        ctx,
        optimizer=optimizer,
        update=sgd_update(optimizer, clip_grad_norm=config.grad_clip),
        schedule=warmup_linear_decay(config.steps, config.warmup_fraction),
        desc=f"train {model.registry_name}/{loss_name}",
    )
    rate = result.timing["train_samples_per_s"]
    result.timing["train_audio_s_per_s"] = rate * config.crop_seconds if rate else None
    return result.curves["train_loss"], result.timing
