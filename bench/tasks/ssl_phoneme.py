"""Self-supervised speech representations (wav2vec 2.0 / data2vec family) -> phoneme error rate.

Each pre-trained cell trains the wav2vec-style network with one quantizer and one
objective on the unlabeled English train split of the embedded corpus, freezes it, and
fits the same linear CTC probe on a labeled subset; the probe reads the encoder output,
an intermediate context layer or the last one, whichever gives the lowest dev PER, and
the test PER of that layer is reported (as the wav2vec paper's TIMIT table reports dev
and test PER). Baselines go through the same probe: log-mel, MFCC and the randomly
initialised network. Per item: the probe's edits and reference length per dev and test
utterance, at the chosen layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench import registry
from bench.config import build_config, scale_config
from bench.context import RunContext
from bench.data import synthetic
from bench.data.items import Utterance
from bench.metrics import weighted
from bench.metrics.asr import edit_counts, rate_from_counts
from bench.models.ctc_probe import ProbeConfig, decode, train_probe
from bench.models.pretraining import (
    PRETRAIN_SCALES,
    PretrainConfig,
    Watch,
    code_usage,
    network_features,
)
from bench.models.wav2vec import Wav2Vec
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import NONE, CellResult, Items, Task, product


@dataclass
class SSLConfig(PretrainConfig):
    probe_epochs: int = 40
    probe_lr: float = 3e-3
    probe_window_ms: float = 100.0  # the conv probe sees this much context at any frame rate
    labeled_fraction: float = 1.0  # of the train split, with phoneme labels, for the probe
    eval_points: int = 1  # probe PER measured at this many points of pre-training

    def validate(self) -> None:
        super().validate()
        if not 0 < self.labeled_fraction <= 1:
            raise ValueError(f"invalid SSL config: {self}")


PROBE_SCALES: dict[str, dict[str, Any]] = {
    "quick": {"probe_epochs": 20},
    "default": {"probe_epochs": 20, "labeled_fraction": 0.5, "eval_points": 2},
    "full": {"eval_points": 5},
}
SCALE_CONFIGS = {s: {**PRETRAIN_SCALES[s], **PROBE_SCALES[s]} for s in PRETRAIN_SCALES}

# (quantizer, objective) rows that make sense; gumbel + contrastive is wav2vec 2.0, and
# data2vec's targets come from its own EMA teacher, not from a quantizer
PRETRAINED = (
    ("gumbel", "contrastive"),
    ("vq", "contrastive"),
    ("none", "contrastive"),
    ("gumbel", "triplet"),
    ("gumbel", "proxy"),
    (NONE, "data2vec"),
)
ROWS = [
    *product(frontend=("logmel", "mfcc", "wav2vec_random"), quantizer=NONE, objective=NONE),
    *[{"frontend": "wav2vec", "quantizer": q, "objective": o} for q, o in PRETRAINED],
]
Splits = tuple[list[Utterance], list[Utterance], list[Utterance]]


def probe_items(
    feats: list[list[torch.Tensor]],
    utts: Splits,
    config: SSLConfig,
    ctx: RunContext,
    frame_ms: float,
) -> Items:
    """Fit the CTC probe on train features; the dev and test edits per utterance."""
    window = 2 * int(round(config.probe_window_ms / frame_ms / 2)) + 1  # odd, ~window_ms
    train_u = utts[0]
    vocab = sorted({p for u in train_u for p in u.phonemes or ()})
    n = max(1, int(round(config.labeled_fraction * len(train_u))))
    probe = train_probe(
        feats[0][:n],
        [list(u.phonemes or ()) for u in train_u[:n]],
        vocab,
        ProbeConfig(kind="conv", window=window, epochs=config.probe_epochs, lr=config.probe_lr),
        ctx.generator(),
    )
    items: Items = {}
    for split, f, us in (("dev", feats[1], utts[1]), ("test", feats[2], utts[2])):
        refs = [list(u.phonemes or ()) for u in us]
        edits = [sum(edit_counts(r, h)) for r, h in zip(refs, decode(probe, f), strict=True)]
        items[split] = {
            "item_id": np.array([u.id for u in us]),
            "edits": np.array(edits, dtype=np.int64),
            "ref_len": np.array([len(r) for r in refs], dtype=np.int64),
        }
    return items


def per(items: Items, split: str) -> float:
    return rate_from_counts(items[split]["edits"], items[split]["ref_len"])


@register("task", "ssl_phoneme")
class SSLPhonemeTask(Task):
    """Quantizer x objective ablation of wav2vec-style pre-training, scored by probe PER."""

    title = "Self-supervised pre-training -> phoneme recognition (linear CTC probe, PER)"
    families = ("frontend", "quantizer", "objective")
    rows = {scale: ROWS for scale in SCALE_CONFIGS}
    baseline = {"frontend": "logmel", "quantizer": NONE, "objective": NONE}
    suite_seeds = {"quick": 1}  # the quick suite is a smoke test of every cell
    headline = "test_per"
    table_metrics = ("dev_per", "test_per", "codebook_perplexity", "code_usage", "pretrain_loss")

    def config(self, scale: str) -> dict[str, Any]:
        return scale_config(SSLConfig, SCALE_CONFIGS, scale)

    def item_forms(self, config: dict[str, Any]) -> dict[str, weighted.ItemForm]:
        return {
            f"{split}_per": weighted.Ratio(split, "edits", "ref_len", drop_empty=True)
            for split in ("dev", "test")
        }

    def metrics_from_items(self, items: Items, config: dict[str, Any]) -> dict[str, float]:
        return {"dev_per": per(items, "dev"), "test_per": per(items, "test")}

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(SSLConfig, cell.config)
        m = cell.method
        splits = [synthetic.load_split(config.corpus, s) for s in ("train", "valid", "test")]
        utts: Splits = (splits[0][0], splits[1][0], splits[2][0])
        audio = [a for _, a in splits]
        per_curve: list[tuple[int, float]] = []

        def probe_context(network: Wav2Vec, step: int) -> None:
            if step < config.steps:  # the final point is measured below with all layers
                feats = [network_features(network, a, ctx.device)["context"] for a in audio]
                per_curve.append((step, per(probe_items(feats, utts, config, ctx, 20.0), "test")))

        points = config.eval_points
        watch = Watch(
            {round(config.steps * (k + 1) / points) for k in range(points)}, probe_context
        )
        frontend = registry.build(
            "frontend",
            m["frontend"],
            quantizer=None if m["quantizer"] == NONE else m["quantizer"],
            objective=m["objective"],
            pretraining=config,
            ctx=ctx,
            watch=watch,
        )
        feats = [frontend.layers(a) for a in audio]
        per_layer = {
            layer: probe_items([f[layer] for f in feats], utts, config, ctx, frontend.frame_ms)
            for layer in feats[0]
        }
        layer = min(per_layer, key=lambda name: per(per_layer[name], "dev"))
        items = per_layer[layer]
        result = CellResult(self.metrics_from_items(items, cell.config), items=items)
        if len(per_layer) > 1:  # a choice of layers: each one's test PER, and the choice
            result.metrics.update({f"test_per_{k}": per(v, "test") for k, v in per_layer.items()})
            result.curves["probe_layer"] = [layer]
        if frontend.pretraining is not None:
            result.curves.update(frontend.pretraining["curves"])
            result.timing = frontend.pretraining["timing"]
            per_curve.append((config.steps, result.metrics["test_per"]))
            result.curves["per_steps"] = [s for s, _ in per_curve]
            result.curves["per_vs_steps"] = [p for _, p in per_curve]
            loss = float(np.mean(result.curves["pretrain_loss"][-10:]))
            result.metrics["pretrain_loss"] = loss
            usage = code_usage(frontend.network, audio[2], ctx.device)
            if usage is not None:
                result.metrics.update(usage["metrics"])
                result.curves["code_counts"] = usage["counts"]
        if frontend.network is not None:
            trainable = (p.numel() for p in frontend.network.parameters() if p.requires_grad)
            result.metrics["parameters"] = float(sum(trainable))
        return result
