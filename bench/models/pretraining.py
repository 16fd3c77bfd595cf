"""Self-supervised pre-training of the wav2vec-style network, shared by the SSL and ASR tasks.

One quantizer x objective network is pre-trained on random crops of the embedded corpus's
unlabeled English train split (AdamW, linear warm-up then linear decay, gradient norm
clipped at 10) through ``bench.training.train``, and kept in the run folder, keyed by
everything that fixes it, so a later cell of the same run (e.g. ASR after the SSL task)
loads it instead of training it again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.context import RunContext
from bench.data import synthetic
from bench.models.wav2vec import Wav2Vec, config_for
from bench.store import replacing, stable_hash
from bench.training import StepOutput, flops_timing, sgd_update, train, warmup_linear_decay

SAMPLE_RATE = 16000


@dataclass
class PretrainConfig:
    corpus: str = "quick"  # embedded corpus scale
    model_size: str = "small"  # tiny / small / base (bench.models.wav2vec.SIZES)
    steps: int = 300  # pre-training updates
    batch_size: int = 8
    crop_seconds: float = 1.5  # random crops of the unlabeled utterances
    lr: float = 5e-4  # AdamW, linear warm-up then linear decay
    warmup_fraction: float = 0.08
    tau_decay: float = 0.995  # Gumbel temperature decay per update (paper 0.999995 for 400k)

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"invalid pre-training config: {self}")


PRETRAIN_SCALES: dict[str, dict[str, Any]] = {
    "quick": {"corpus": "quick", "steps": 40},
    # sized so the default suite fits its hour on 2 CPU cores
    "default": {"corpus": "default", "steps": 400},
    "full": {
        "corpus": "full",
        "model_size": "base",
        "steps": 20000,
        "batch_size": 16,
        "tau_decay": 0.9999,
    },
}


@dataclass
class Watch:
    """Look at the network while it pre-trains: ``probe(network, step)`` after each of
    ``steps`` (counts of updates done); the network is back in training mode afterwards."""

    steps: set[int]
    probe: Callable[[Wav2Vec, int], None]


def random_crops(
    audio: Sequence[np.ndarray], batch: int, length: int, rng: np.random.Generator
) -> torch.Tensor:
    """``batch`` crops of ``length`` samples from random utterances (zero-padded if short)."""
    out = np.zeros((batch, length), dtype=np.float32)
    for row, i in enumerate(rng.integers(len(audio), size=batch)):
        wav = audio[i]
        if len(wav) > length:
            start = int(rng.integers(len(wav) - length + 1))
            out[row] = wav[start : start + length]
        else:
            out[row, : len(wav)] = wav
    return torch.from_numpy(out)


def pretrain(
    model: Wav2Vec, config: PretrainConfig, ctx: RunContext, watch: Watch | None = None
) -> dict[str, dict]:
    """Self-supervised training of ``model``; returns its curves and timing."""
    _, audio = synthetic.load_split(config.corpus, "train")
    rng, generator = ctx.rng(), ctx.generator()
    crop = int(config.crop_seconds * SAMPLE_RATE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    last: dict[str, torch.Tensor] = {}

    def forward(step: int) -> StepOutput:
        last["wav"] = wav = random_crops(audio, config.batch_size, crop, rng).to(ctx.device)
        with ctx.autocast():
            out = model(wav, generator)
        logs = {
            "pretrain_loss": out.objective_loss.item(),
            "pretrain_accuracy": float(out.accuracy),
            "codebook_perplexity_train": float(out.perplexity),
        }
        return StepOutput(out.loss, items=config.batch_size, logs=logs)

    def evaluate(done: int) -> dict[str, float]:
        if watch is not None and done in watch.steps:
            watch.probe(model, done)
            model.train()
        return {}

    model.train()
    result = train(
        forward,
        config.steps,
        ctx,
        optimizer=optimizer,
        update=sgd_update(optimizer, clip_grad_norm=10.0, after=model.anneal),
        schedule=warmup_linear_decay(config.steps, config.warmup_fraction),
        evaluate=evaluate if watch is not None else None,
        eval_steps=watch.steps if watch is not None else None,
        eval_key="watched_step",
        loss_key="pretrain_total_loss",
        desc=f"pretrain {model.method}",
    )
    names = ("pretrain_loss", "pretrain_accuracy", "codebook_perplexity_train")
    curves = {k: result.curves[k] for k in names}
    timing = dict(result.timing)
    rate = timing["train_samples_per_s"]
    timing |= flops_timing(lambda: model(last["wav"][:1], generator), 1, ctx, rate)
    seconds_per_s = rate * config.crop_seconds if rate else None
    timing["train_audio_s_per_s"] = seconds_per_s
    timing["rtf"] = 1 / seconds_per_s if seconds_per_s else None  # wall s per audio s
    timing["flops_per_audio_second"] = float(timing["flops_per_sample"] or 0) / config.crop_seconds
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
        | {"amp": ctx.amp, **pretrain_key(config)}
    )
    name = f"{quantizer or 'no-quantizer'}-{objective}-s{ctx.seed}-{key}.pt"
    return ctx.run_dir / "artifacts" / "ssl_encoders" / name


def save_pretrained(model: Wav2Vec, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as fh:  # atomic, unique temp name: no half-written network
        torch.save(model.state_dict(), fh)


def build_network(
    quantizer: str | None, objective: str, config: PretrainConfig, ctx: RunContext
) -> Wav2Vec:
    """A freshly initialised network (its init comes from the cell's seeded torch RNG)."""
    model_config = config_for(config.model_size, tau_decay=config.tau_decay)
    return Wav2Vec(model_config, quantizer, objective).to(ctx.device)


def load_or_pretrain(
    quantizer: str | None,
    objective: str,
    config: PretrainConfig,
    ctx: RunContext,
    watch: Watch | None = None,
) -> tuple[Wav2Vec, dict | None]:
    """The pre-trained network and its curves and timing (None when loaded: an earlier cell
    of this run made it). A watched pre-training always runs, to be looked at."""
    model = build_network(quantizer, objective, config, ctx)
    path = pretrained_path(quantizer, objective, config, ctx)
    if watch is None and path.exists():
        model.load_state_dict(torch.load(path, map_location=ctx.device, weights_only=True))
        return model, None
    trained = pretrain(model, config, ctx, watch)
    save_pretrained(model, path)
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


@torch.no_grad()
def code_usage(
    model: Wav2Vec, audio: Sequence[np.ndarray], device: torch.device
) -> dict[str, Any] | None:
    """Codebook use on ``audio``: perplexity and fraction of entries ever chosen (None: the
    network has no codebook)."""
    quantizer = model.quantizer
    if quantizer is None or quantizer.num_entries < 1:
        return None
    model.eval()
    counts = None
    for wav in audio:
        z = model.features(torch.from_numpy(wav).unsqueeze(0).to(device))
        codes = quantizer(z).codes.reshape(-1, quantizer.num_groups)
        v = quantizer.num_entries
        c = torch.stack(
            [torch.bincount(codes[:, g], minlength=v) for g in range(codes.shape[1])]
        ).double()
        counts = c if counts is None else counts + c
    assert counts is not None, "code_usage needs at least one utterance"
    p = counts / counts.sum(1, keepdim=True)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(1)
    return {
        "metrics": {
            "codebook_perplexity": float(torch.exp(entropy).sum()),  # summed over groups
            "code_usage": float((counts > 0).double().mean()),
        },
        "counts": counts.flatten().tolist(),
        "entropy_bits": float(entropy.sum() / math.log(2)),
    }
