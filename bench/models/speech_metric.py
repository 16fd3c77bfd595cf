"""The speech encoder trained by metric learning: the config and training shared by the
speaker task (unseen speakers) and the prosody task (seen speakers).

The encoder (bench.models.speaker_encoder) is normalised with its training frames and
trained on P×K batches of random log-mel crops (bench.models.batching) with the row's
loss and miner (bench.models.metric_training). The untrained row (no loss) only builds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bench.context import RunContext
from bench.models.batching import crops, sample_batch
from bench.models.logmel_features import CONDITIONS
from bench.models.metric_training import Batch, build_loss_and_miner, train_metric
from bench.models.speaker_encoder import Encoder

__all__ = ["SCALE_CONFIGS", "MetricConfig", "train_speech_encoder"]


@dataclass
class MetricConfig:
    corpus: str = "quick"  # the embedded corpus scale
    steps: int = 100  # training updates
    classes_per_batch: int = 8  # P of a P×K batch
    samples_per_class: int = 4  # K of a P×K batch
    crop_frames: int = 120  # training crops, 10 ms frames
    n_mels: int = 40
    channels: int = 64  # conv channels of the encoder
    embedding_dim: int = 64
    lr: float = 1e-3  # Adam
    proxy_lr_mult: float = 10.0  # proxies learn faster (Proxy-Anchor uses 100x)
    eval_every: int = 25  # steps between points of the valid Recall@1 curve
    upstream: str = ""  # frontend=hf: a local transformers checkpoint folder (--upstream)
    # how the valid and test utterances are heard (the speaker task; training stays clean):
    # "clean" or "noisy" (each utterance's mixture), and their middle seconds (0: whole)
    eval_condition: str = "clean"
    eval_seconds: float = 0.0
    # the row's loss parameters over the task's defaults (tuning trials set them)
    method_params: dict[str, float] = field(default_factory=dict)

    def validate(self) -> None:
        if min(self.steps, self.classes_per_batch, self.crop_frames, self.eval_every) < 1:
            raise ValueError(f"invalid metric-learning config: {self}")
        if self.eval_condition not in CONDITIONS or self.eval_seconds < 0:
            raise ValueError(
                f"eval_condition must be clean or noisy and eval_seconds >= 0, got "
                f"{self.eval_condition!r}, {self.eval_seconds}"
            )
        if self.samples_per_class < 2:
            raise ValueError("samples_per_class must be ≥ 2 (a batch needs positive pairs)")


SCALE_CONFIGS = {
    "quick": {"corpus": "quick", "steps": 100, "crop_frames": 100},
    # 200 updates: ~20 s per cell on one core (measured: 61 ms per step, default corpus)
    "default": {"corpus": "default", "steps": 200, "eval_every": 50},
    "full": {"corpus": "full", "steps": 3000, "eval_every": 200},
}


def train_speech_encoder(
    loss: str | None,
    miner: str | None,
    feats: list[torch.Tensor],
    labels: np.ndarray,
    config: MetricConfig,
    ctx: RunContext,
    *,
    loss_params: dict[str, Any] | None,
    valid_recall: Callable[[Any], float],
    make_encoder: Callable[[], Any] | None = None,
) -> tuple[Encoder, dict[str, list], dict[str, float | None]]:
    """Train (``loss`` None: only build) the encoder on ``feats`` with class indices
    ``labels`` (0..C−1). ``valid_recall(model)`` is the curve ``valid_recall_at_1``, at
    step 1, every ``eval_every`` steps and the last (at step 0 only, untrained).
    ``make_encoder()`` builds the encoder (default: the log-mel one, ``n_mels`` inputs).
    The loss gets the task's ``loss_params`` with ``config.method_params`` over them.
    Returns the model, its curves and its timing."""
    device = ctx.device
    if make_encoder is None:
        model = Encoder(config.n_mels, config.channels, config.embedding_dim)
    else:
        model = make_encoder()
    model = model.normalise_with(feats).to(device)
    if loss is None:
        return model, {"step": [0], "valid_recall_at_1": [valid_recall(model)]}, {}
    rng = ctx.rng()
    loss_fn, mine = build_loss_and_miner(
        loss,
        miner,
        params={**(loss_params or {}), **config.method_params},  # a tuning trial's values win
        num_classes=int(labels.max()) + 1,
        embedding_dim=config.embedding_dim,
        generator=ctx.generator(),
    )
    y_all = torch.as_tensor(labels)

    def batch() -> Batch:
        idx = sample_batch(labels, config.classes_per_batch, config.samples_per_class, rng)
        x = crops(feats, idx, config.crop_frames, rng).to(device)
        lengths = torch.full((len(idx),), x.shape[1], device=device)
        return (x, lengths), y_all[idx].to(device)

    result = train_metric(
        model,
        batch,
        loss_fn,
        mine,
        ctx,
        steps=config.steps,
        lr=config.lr,
        proxy_lr_mult=config.proxy_lr_mult,
        evaluate=lambda done: {"valid_recall_at_1": valid_recall(model)},
        eval_steps={1},
        eval_every=config.eval_every,
        desc=f"{loss}/{miner or '-'}",
    )
    return model, result.curves, result.timing
