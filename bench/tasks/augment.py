"""Data-augmentation ablation: tone-of-voice accuracy on clean and shifted test audio.

The small log-mel encoder of bench.models.speaker_encoder, with a linear classifier head,
is trained with cross-entropy on the embedded corpus's four prosody classes ("tone of
voice") on seen speakers (bench.data.seen_speakers: a fixed seeded 60/20/20 split of every
speaker's utterances; the valid part is unused). Each cell trains with one registered
augmentation (methods/augment.py: none, noise, speed, specaugment), applied to every
training crop, and is scored on three versions of the same test utterances: clean, noisy
(coloured noise at ``test_snr_db``, seeded independently of the cell's seed so every cell
sees the same test set) and speed-changed (``test_speed``, which also shifts the pitch).
Baseline: none. With ``frontend=hf`` the encoder reads the learned weighted sum of a frozen
pretrained upstream's layers (bench.models.hf_upstream) instead of log-mel; the upstream
runs on every augmented training crop (augmented audio cannot be cached) and a feature-
domain augmentation masks every layer alike.

Per item: each test utterance's label and, per condition, its prediction and correctness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bench import registry
from bench.config import build_config, scale_config
from bench.data.seen_speakers import load_audio, seen_speaker_splits
from bench.metrics import weighted
from bench.models.batching import class_indices
from bench.models.frontends import LogMel
from bench.models.hf_upstream import flatten_layers, hf_grid, train_batch, upstream_data_identity
from bench.models.logmel_features import FRONTENDS, InputFeatures, layer_weights
from bench.models.speaker_encoder import pad
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import CellResult, RunContext, Task, product
from bench.training import StepOutput, train
from methods.augment import add_noise, change_speed

HOP = 160  # samples per log-mel frame (10 ms at 16 kHz)
TEST_NOISE_KINDS = ("white", "pink", "brown")
TEST_SEED = 12345  # the shifted test sets are the same for every cell
CONDITIONS = ("clean", "noisy", "speed")


@dataclass
class AugmentConfig:
    corpus: str = "quick"  # the embedded corpus scale
    steps: int = 150  # training updates
    batch_size: int = 32
    crop_frames: int = 100  # training crops, 10 ms frames
    n_mels: int = 40
    channels: int = 64  # conv channels of the encoder
    embedding_dim: int = 64
    lr: float = 1e-3  # Adam
    eval_every: int = 50  # steps between points of the train-loss / test-accuracy curve
    test_snr_db: float = 5.0  # noisy test set
    test_speed: float = 1.15  # speed-changed test set (pitch and tempo × 1.15)
    upstream: str = ""  # frontend=hf: a local transformers checkpoint folder (--upstream)

    def validate(self) -> None:
        if min(self.steps, self.batch_size, self.crop_frames, self.eval_every) < 1:
            raise ValueError(f"invalid augment config: {self}")
        if self.test_speed <= 0:
            raise ValueError(f"test_speed must be positive, got {self.test_speed}")


SCALE_CONFIGS = {
    "quick": {"corpus": "quick", "steps": 150},
    "default": {"corpus": "default", "steps": 400, "eval_every": 100},
    "full": {"corpus": "full", "steps": 3000, "eval_every": 500},
}
ROWS = product(frontend="logmel", augment=("none", "noise", "speed", "specaugment"))


class Classifier(nn.Module):
    def __init__(self, config: AugmentConfig, n_classes: int, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder: Any = encoder
        self.head = nn.Linear(config.embedding_dim, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.encoder(x, lengths)))


def crop_wave(x: torch.Tensor, n: int, rng: np.random.Generator) -> torch.Tensor:
    """A random ``n``-sample crop (short signals are tiled to length)."""
    if len(x) < n:
        x = x.repeat(n // len(x) + 1)
    start = int(rng.integers(0, len(x) - n + 1))
    return x[start : start + n]


def shifted_test_sets(audio: list[torch.Tensor], config: AugmentConfig) -> dict[str, list]:
    rng = np.random.default_rng(TEST_SEED)
    noisy = [
        add_noise(a, config.test_snr_db, TEST_NOISE_KINDS[i % len(TEST_NOISE_KINDS)], rng)
        for i, a in enumerate(audio)
    ]
    return {
        "clean": audio,
        "noisy": noisy,
        "speed": [change_speed(a, config.test_speed) for a in audio],
    }


@torch.no_grad()
def predict(model: Classifier, feats: list[torch.Tensor], device: torch.device) -> np.ndarray:
    model.eval()
    preds = []
    for s in range(0, len(feats), 64):
        x, lengths = pad(feats[s : s + 64])
        preds.append(model(x.to(device), lengths.to(device)).argmax(1).cpu())
    return torch.cat(preds).numpy()


@register("task", "augment")
class AugmentTask(Task):
    """Augmentation ablation (none/noise/speed/specaugment) -> clean and shifted accuracy."""

    title = "Data augmentation ablation: tone-of-voice accuracy, clean vs shifted test audio"
    families = ("frontend", "augment")
    rows = {scale: ROWS for scale in SCALE_CONFIGS}
    baseline = {"augment": "none"}
    table_metrics = ("acc_clean", "acc_noisy", "acc_speed")
    suite_seeds = {"quick": 1}
    cpu_threads = 1  # small convolutions: a second thread only slows them (harness)

    def config(self, scale: str) -> dict:
        return scale_config(AugmentConfig, SCALE_CONFIGS, scale)

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        return hf_grid(super().grid(selected, scale), self.baseline, None, FRONTENDS, self.name)

    def data_identity(self, config: dict) -> Any:
        return upstream_data_identity(super().data_identity(config), config)

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(AugmentConfig, cell.config)
        inputs = InputFeatures(
            cell.method.get("frontend", "logmel"), config.n_mels, config.upstream, ctx
        )
        up = inputs.upstream
        device = ctx.device
        utts, audio = load_audio(config.corpus)
        labels, classes = class_indices([u.prosody for u in utts])
        parts = seen_speaker_splits(utts)
        train_audio = [audio[i] for i in parts["train"]]
        y_train, y_test = labels[parts["train"]], labels[parts["test"]]
        logmel = LogMel(n_mels=config.n_mels)

        def feats_of(waves: list[torch.Tensor]) -> list[torch.Tensor]:
            if up is None:
                return [logmel(a) for a in waves]
            return [flatten_layers(s) for s in up.hidden_states(waves)]

        tests = {
            k: feats_of(v)
            for k, v in shifted_test_sets([audio[i] for i in parts["test"]], config).items()
        }
        rng = ctx.rng()
        augmentation = registry.build("augment", cell.method["augment"])
        encoder = inputs.encoder(config.channels, config.embedding_dim)
        model = Classifier(config, len(classes), encoder)
        model.encoder.normalise_with(feats_of(train_audio))  # clean-train frames
        model = model.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        n_samples = config.crop_frames * HOP

        def forward(step: int) -> StepOutput:
            model.train()
            idx = rng.integers(0, len(train_audio), size=config.batch_size)
            batch = []
            for i in idx:
                # a slightly longer crop, so a speed-up still fills the window
                wave = crop_wave(train_audio[i], int(n_samples * 1.2), rng)
                if augmentation.domain == "wave":
                    wave = augmentation(wave, rng)
                if up is not None:  # the upstream runs on the whole batch below
                    batch.append(crop_wave(wave, n_samples, rng))
                    continue
                feat = logmel(crop_wave(wave, n_samples, rng))[: config.crop_frames]
                if augmentation.domain == "spec":
                    feat = augmentation(feat, rng)
                batch.append(feat)
            x = torch.stack(batch) if up is None else train_batch(up, batch, augmentation, rng)
            x = x.to(device)
            y = torch.as_tensor(y_train[idx]).to(device)
            with ctx.autocast():
                logits = model(x, torch.full((len(idx),), x.shape[1], device=device))
            return StepOutput(nn.functional.cross_entropy(logits.float(), y), items=len(idx))

        def evaluate(done: int) -> dict[str, float]:
            return {
                "test_acc_clean": float((predict(model, tests["clean"], device) == y_test).mean())
            }

        result = train(
            forward,
            config.steps,
            ctx,
            optimizer=optimizer,
            evaluate=evaluate,
            eval_every=config.eval_every,
            desc=cell.method["augment"],
        )
        test = {"item_id": np.array([utts[i].id for i in parts["test"]]), "label": y_test}
        for condition in CONDITIONS:
            test[f"pred_{condition}"] = predict(model, tests[condition], device)
            test[f"correct_{condition}"] = test[f"pred_{condition}"] == y_test
        metrics = self.metrics_from_items({"test": test}, cell.config)
        metrics["parameters"] = sum(p.numel() for p in model.parameters())
        curves = {**result.curves, "classes": classes}
        if (weights := layer_weights(model.encoder)) is not None:
            curves["layer_weights"] = weights
        return CellResult(
            metrics=metrics, curves=curves, timing=result.timing, items={"test": test}
        )

    def item_forms(self, config) -> dict[str, weighted.ItemForm]:
        return {
            f"acc_{c}": weighted.Mean("test", weighted.column(f"correct_{c}"), binary=True)
            for c in CONDITIONS
        }

    def metrics_from_items(self, items, config) -> dict[str, float]:
        test = items["test"]
        return {f"acc_{c}": float(np.mean(test[f"correct_{c}"])) for c in CONDITIONS}
