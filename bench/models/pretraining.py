"""Self-supervised pre-training of the wav2vec-style network, shared by the SSL and ASR tasks.

One quantizer x objective network is pre-trained on random crops of the unlabeled pool
(bench/data/unlabeled_pool.py: the corpus's train audio of both languages, its noisy twins
and an unlabeled-only synthetic pool, about 10x the English train split) with AdamW,
linear warm-up then linear decay and the gradient norm clipped at 10, through
``bench.training.train``; the network is kept in the run folder, keyed by
everything that fixes it, so a later cell of the same run (e.g. ASR after the SSL task)
loads it instead of training it again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.context import RunContext
from bench.data import unlabeled_pool
from bench.models.wav2vec import Wav2Vec
from bench.models.wav2vec_config import config_for
from bench.store import replacing, stable_hash, write_atomic
from bench.training import StepOutput, flops_timing, sgd_update, train, warmup_linear_decay

SAMPLE_RATE = 16000


@dataclass
class PretrainConfig:
    corpus: str = "quick"  # embedded corpus scale
    model_size: str = "small"  # tiny / small / base (bench.models.wav2vec.SIZES)
    steps: int = 300  # pre-training updates
    batch_size: int = 8
    crop_seconds: float = 1.5  # longest crop; a batch is cropped to its shortest utterance
    lr: float = 5e-4  # AdamW, linear warm-up then linear decay
    warmup_fraction: float = 0.08
    # the Gumbel temperature falls geometrically from 2 to its floor 0.5 over this share of
    # the updates (fairseq's decay 0.999995 reaches the floor after 69% of 400k updates)
    tau_anneal_fraction: float = 0.7
    stem: str = "logmel"  # "logmel" on CPU budgets; "conv" (the waveform encoder) for full

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not 0 < self.tau_anneal_fraction <= 1:
            raise ValueError(f"invalid pre-training config: {self}")

    def tau_decay(self) -> float:
        """Per-update factor that takes τ from TAU_RANGE[0] to TAU_RANGE[1] over the share."""
        updates = max(1.0, self.tau_anneal_fraction * self.steps)
        return (TAU_RANGE[1] / TAU_RANGE[0]) ** (1 / updates)


TAU_RANGE = (2.0, 0.5)  # the Gumbel quantizer's default (tau_max, tau_min), wav2vec 2.0's
NETWORK_VERSION = 3  # part of a kept network's key: bump when the architecture changes


PRETRAIN_SCALES: dict[str, dict[str, Any]] = {
    "quick": {"corpus": "quick", "steps": 60},
    # the 2,000-3,000 updates with warm-up and decay; about 0.08 s each on one core
    "default": {"corpus": "default", "steps": 2000},
    "full": {
        "corpus": "full",
        "model_size": "base",
        "steps": 20000,
        "batch_size": 16,
        "stem": "conv",
    },
}


def random_crops(
    audio: Sequence[np.ndarray], batch: int, length: int, rng: np.random.Generator
) -> torch.Tensor:
    """``batch`` random crops from random utterances, all as long as the shortest of them
    (at most ``length`` samples): no padding, so no padded frame is masked, predicted or
    used as a distractor (fairseq's audio pre-training crops a batch the same way)."""
    chosen = [audio[i] for i in rng.integers(len(audio), size=batch)]
    length = min(length, *(len(w) for w in chosen))
    out = np.empty((batch, length), dtype=np.float32)
    for row, wav in enumerate(chosen):
        start = int(rng.integers(len(wav) - length + 1))
        out[row] = wav[start : start + length]
    return torch.from_numpy(out)


def pretrain(model: Wav2Vec, config: PretrainConfig, ctx: RunContext) -> dict[str, dict]:
    """Self-supervised training of ``model``; returns its curves and timing."""
    audio = unlabeled_pool.pool_audio(config.corpus)
    rng, generator = ctx.rng(), ctx.generator()
    crop = int(config.crop_seconds * SAMPLE_RATE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    last: dict[str, torch.Tensor] = {}
    crop_seconds: list[float] = []  # of each batch (a batch is cut to its shortest utterance)

    def forward(step: int) -> StepOutput:
        last["wav"] = wav = random_crops(audio, config.batch_size, crop, rng).to(ctx.device)
        crop_seconds.append(wav.shape[1] / SAMPLE_RATE)
        with ctx.autocast():
            out = model(wav, generator)
        logs = {
            "pretrain_loss": out.objective_loss.item(),
            "pretrain_accuracy": float(out.accuracy),
            "codebook_perplexity_train": float(out.perplexity),
        }
        return StepOutput(out.loss, items=config.batch_size, logs=logs)

    model.train()
    result = train(
        forward,
        config.steps,
        ctx,
        optimizer=optimizer,
        update=sgd_update(optimizer, clip_grad_norm=10.0, after=model.anneal),
        schedule=warmup_linear_decay(config.steps, config.warmup_fraction),
        loss_key="pretrain_total_loss",
        desc=f"pretrain {model.method}",
    )
    names = ("pretrain_loss", "pretrain_accuracy", "codebook_perplexity_train")
    curves = {k: result.curves[k] for k in names}
    timing = dict(result.timing)
    rate = timing["train_samples_per_s"]
    timing |= flops_timing(lambda: model(last["wav"][:1], generator), 1, ctx, rate)
    mean_crop = float(np.mean(crop_seconds))
    seconds_per_s = rate * mean_crop if rate else None
    timing["train_audio_s_per_s"] = seconds_per_s
    timing["rtf"] = 1 / seconds_per_s if seconds_per_s else None  # wall s per audio s
    flops_one = float(timing["flops_per_sample"] or 0)  # measured on the last batch's crop
    timing["flops_per_audio_second"] = flops_one / (last["wav"].shape[1] / SAMPLE_RATE)
    return {"curves": curves, "timing": timing}


def pretrain_key(config: PretrainConfig) -> dict[str, Any]:
    """The fields of ``config`` (or of a config that extends it) that fix pre-training."""
    return {f.name: getattr(config, f.name) for f in fields(PretrainConfig)}


def pretrained_path(
    quantizer: str | None, objective: str, config: PretrainConfig, ctx: RunContext
) -> Path:
    """Where the pre-trained network of (quantizer, objective, seed, config) is kept."""
    key = stable_hash(
        {"q": quantizer, "o": objective, "seed": ctx.seed, "device": str(ctx.device)}
        | {"amp": ctx.amp, "version": NETWORK_VERSION, **pretrain_key(config)}
    )
    name = f"{quantizer or 'no-quantizer'}-{objective}-s{ctx.seed}-{key}.pt"
    return ctx.run_dir / "artifacts" / "ssl_encoders" / name


def save_pretrained(model: Wav2Vec, path: Path, trained: dict) -> None:
    """The network and, beside it, its pre-training summary and curves (for later cells)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as fh:  # atomic, unique temp name: no half-written network
        torch.save(model.state_dict(), fh)
    kept = {"summary": trained["summary"], "curves": trained["curves"]}
    write_atomic(path.with_suffix(".json"), json.dumps(kept))


def build_network(
    quantizer: str | None, objective: str, config: PretrainConfig, ctx: RunContext
) -> Wav2Vec:
    """A freshly initialised network (its init comes from the cell's seeded torch RNG)."""
    model_config = config_for(config.model_size, tau_decay=config.tau_decay(), stem=config.stem)
    return Wav2Vec(model_config, quantizer, objective).to(ctx.device)


def chance_accuracy(model: Wav2Vec) -> float:
    """The pre-training accuracy of guessing: 1/(K+1) among K distractors, 1/V over a
    codebook of V entries, nan for a regression objective (data2vec)."""
    needs = model.objective.needs
    if needs == "negatives":
        return 1 / (model.config.num_negatives + 1)
    if needs == "codebook" and model.quantizer is not None:
        return 1 / model.quantizer.num_entries
    return float("nan")


def summarize(model: Wav2Vec, curves: dict[str, list]) -> dict[str, float]:
    """End-of-pre-training loss and accuracy (mean of the last 10% of updates), and the
    accuracy of chance."""

    def tail(name: str) -> float:
        values = curves[name]
        return float(np.mean(values[-max(1, len(values) // 10) :]))

    summary = {"pretrain_loss": tail("pretrain_loss")}
    chance = chance_accuracy(model)
    if not math.isnan(chance):  # a regression objective (data2vec) has no accuracy
        summary |= {"pretrain_accuracy": tail("pretrain_accuracy"), "pretrain_chance": chance}
    return summary


def load_or_pretrain(
    quantizer: str | None,
    objective: str,
    config: PretrainConfig,
    ctx: RunContext,
) -> tuple[Wav2Vec, dict]:
    """The pre-trained network and its pre-training: "summary" and "curves", and "timing"
    (empty when loaded: an earlier cell of this run pre-trained it)."""
    model = build_network(quantizer, objective, config, ctx)
    path = pretrained_path(quantizer, objective, config, ctx)
    if path.exists() and path.with_suffix(".json").exists():
        model.load_state_dict(torch.load(path, map_location=ctx.device, weights_only=True))
        kept = json.loads(path.with_suffix(".json").read_text())
        return model, {**kept, "timing": {}}
    trained = pretrain(model, config, ctx)
    trained["summary"] = summarize(model, trained["curves"])
    save_pretrained(model, path, trained)
    return model, trained


def network_features(
    model: Wav2Vec, audio: Sequence[np.ndarray], device: torch.device
) -> dict[str, list[torch.Tensor]]:
    """Frozen representations of every utterance (eval mode), one list per layer."""
    model.eval()
    out: dict[str, list[torch.Tensor]] = {}
    for wav in audio:
        reps = model.representations(torch.from_numpy(wav).unsqueeze(0).to(device))
        for name, value in reps.items():
            out.setdefault(name, []).append(value[0].float().cpu())
    return out
