"""Quantizers compared on equal terms outside pre-training: a VQ-VAE on log-mel frames.

One small conv encoder -> quantizer -> conv decoder (bench/models/vqvae.py) is trained per
cell to reconstruct standardised log-mel frames of the embedded corpus's English train
speakers, with the row's quantizer at 20 ms and one codebook group (G = 1, so the codebook
size is the number of entries). Rows: the three ways of learning a VQ codebook (plain
straight-through VQ-VAE, EMA updates, EMA + dead-code restarts; methods/vq_variants.py),
wav2vec 2.0's Gumbel-softmax quantizer with its diversity loss (τ 2 -> 0.5, weight 0.1),
each at 32, 256 and 1024 entries, and no quantizer (the reconstruction upper bound).

Scored on the unseen test speakers: reconstruction MSE per utterance (the items; the
paired bootstrap covers it), and the codes' corpus-level perplexity, usage, phone mutual
information, PNMI and purity against the corpus's phone alignments (one value per cell:
their spread is over seeds only). Curves over training of the valid split's code
perplexity and usage show a codebook collapsing. Baseline: ``vq_st`` of the same size,
the published VQ-VAE that each codebook fix claims to improve on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench import registry
from bench.config import build_config, scale_config
from bench.context import RunContext
from bench.metrics import weighted
from bench.models.vqvae import (
    LogMelVQVAE,
    TrainSetup,
    code_stats,
    evaluate_frames,
    standardised_logmel,
    train_vqvae,
)
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import NONE, CellResult, Items, Task, product
from bench.training import flops_timing

SIZES = ("32", "256", "1024")
# every codebook size a sweep may name (powers of two); "-" is the row without a quantizer
CODEBOOK_AXIS = (NONE, *(str(2**k) for k in range(1, 13)))
QUANTIZERS = ("vq_st", "vq_ema", "vq_restart", "gumbel")
NO_QUANTIZER = {"quantizer": "none", "codebook": NONE}
TAU_MAX, TAU_MIN = 2.0, 0.5  # wav2vec 2.0's Gumbel temperature range


@dataclass
class VQVAEConfig:
    corpus: str = "quick"  # embedded corpus scale
    n_mels: int = 80
    hidden: int = 64  # conv channels
    code_dim: int = 64  # D: encoder output, quantizer in and out, decoder input
    steps: int = 400
    batch_size: int = 16
    crop_frames: int = 128  # 1.28 s crops: 1,024 code frames per batch at batch 16
    lr: float = 2e-3  # Adam
    diversity_weight: float = 0.1  # α of wav2vec 2.0's diversity loss (Gumbel)
    tau_anneal_fraction: float = 0.7  # τ reaches its floor at this share of the steps
    eval_every: int = 40  # steps between the valid-split curve points
    valid_utterances: int = 48  # valid utterances behind the curves

    def validate(self) -> None:
        if min(self.n_mels, self.hidden, self.code_dim, self.steps, self.batch_size) < 1:
            raise ValueError(f"n_mels, hidden, code_dim, steps, batch_size must be >= 1: {self}")
        if self.crop_frames < 2 or self.crop_frames % 2:
            raise ValueError(f"crop_frames must be even and >= 2, got {self.crop_frames}")
        if self.lr <= 0 or self.diversity_weight < 0 or not 0 < self.tau_anneal_fraction <= 1:
            raise ValueError(
                "need lr > 0, diversity_weight >= 0 and 0 < tau_anneal_fraction <= 1; got "
                f"{self.lr}, {self.diversity_weight}, {self.tau_anneal_fraction}"
            )
        if self.eval_every < 1 or self.valid_utterances < 1:
            raise ValueError("eval_every and valid_utterances must be >= 1")

    def tau_decay(self) -> float:
        """Per-update factor taking the Gumbel τ from 2 to 0.5 over the anneal share."""
        return (TAU_MIN / TAU_MAX) ** (1 / max(1.0, self.tau_anneal_fraction * self.steps))


SCALE_CONFIGS: dict[str, dict[str, Any]] = {
    "quick": {"corpus": "quick", "steps": 120, "eval_every": 20, "valid_utterances": 16},
    "default": {"corpus": "default", "steps": 400},
    "full": {"corpus": "full", "steps": 5000, "hidden": 256, "batch_size": 32, "eval_every": 100},
}
FULL_ROWS = [*product(quantizer=QUANTIZERS, codebook=SIZES), NO_QUANTIZER]
ROWS = {
    "quick": [*product(quantizer=QUANTIZERS, codebook="32"), NO_QUANTIZER],
    "default": FULL_ROWS,
    "full": FULL_ROWS,
}


def codebook_size(quantizer: str, value: str) -> int:
    """The codebook size a row names (0 for the row without a quantizer); input errors
    name the value and the fix."""
    if quantizer == "none":
        if value != NONE:
            raise ValueError(f"quantizer 'none' has no codebook: its row takes codebook '{NONE}'")
        return 0
    try:
        size = int(value)
    except ValueError:
        size = -1
    if not 2 <= size <= 4096:
        raise ValueError(
            f"codebook size {value!r} of quantizer {quantizer!r} must be an integer in "
            f"[2, 4096]; pick one of {', '.join(CODEBOOK_AXIS[1:])}"
        )
    return size


def build_quantizer(name: str, size: int, config: VQVAEConfig):
    """The row's quantizer at ``size`` entries and one group (for every quantizer that has
    groups), in = out = code_dim."""
    dim = config.code_dim
    context: dict[str, Any] = {"in_dim": dim, "out_dim": dim, "tau_decay": config.tau_decay()}
    if name == "none":
        return registry.build("quantizer", name, **context)
    try:
        return registry.build("quantizer", name, {"entries": size, "groups": 1}, **context)
    except registry.ContextError as exc:
        if "no parameter groups" not in str(exc):
            raise ValueError(f"quantizer {name!r} takes no codebook size here: {exc}") from None
    return registry.build("quantizer", name, {"entries": size}, **context)


@register("task", "vqvae")
class VQVAETask(Task):
    """Quantizer x codebook size in a log-mel VQ-VAE -> reconstruction MSE and code quality."""

    title = "VQ-VAE on log-mel frames (quantizers x codebook size, test speakers)"
    families = ("quantizer", "codebook")
    axes = {"codebook": CODEBOOK_AXIS}
    rows = ROWS
    baseline = {"quantizer": "vq_st"}
    headline = "recon_mse"
    table_metrics = (
        "recon_mse",
        "code_perplexity",
        "code_usage",
        "phone_pnmi",
        "phone_mi_bits",
        "phone_purity",
    )
    suite_seeds = {"quick": 1}  # the quick suite is a smoke test of every cell
    # the default suite's 60-minute budget (issue 21): every quantizer at 256 entries; the
    # codebook-size axis (32, 256, 1024) is for --methods and the sweeps
    suite_methods = {"default": {"codebook": ["256"]}}
    cpu_threads = 1  # small convolutions: a second thread only slows them

    def config(self, scale: str) -> dict[str, Any]:
        return scale_config(VQVAEConfig, SCALE_CONFIGS, scale)

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        """As Task.grid, but the row without a quantizer always has codebook '-' (a
        selected codebook size does not multiply it)."""
        rows = [
            {**r, "codebook": NONE} if r["quantizer"] == "none" else r
            for r in super().grid(selected, scale)
        ]
        return [dict(t) for t in dict.fromkeys(tuple(r.items()) for r in rows)]

    def dataset_card(self, config: dict[str, Any]) -> str | None:
        cfg = build_config(VQVAEConfig, config)
        feats = standardised_logmel(cfg.corpus, cfg.n_mels)
        n = {k: len(u) for k, (u, _) in feats.items()}
        note = (
            f"The vqvae task uses the English speakers only: train {n['train']} utterances "
            f"(training crops and the per-bin log-mel standardisation), the first "
            f"{min(cfg.valid_utterances, n['valid'])} valid utterances (the curves over "
            f"training) and test {n['test']} (every reported score)."
        )
        return f"{super().dataset_card(config)}\n\n{note}"

    def item_forms(self, config: dict[str, Any]) -> dict[str, weighted.ItemForm]:
        return {"recon_mse": weighted.Ratio("test", "sq_err", "values")}

    def metrics_from_items(self, items: Items, config: dict[str, Any]) -> dict[str, float]:
        test = items["test"]
        return {"recon_mse": float(np.sum(test["sq_err"]) / np.sum(test["values"]))}

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(VQVAEConfig, cell.config)
        name = cell.method["quantizer"]
        size = codebook_size(name, cell.method["codebook"])
        feats = standardised_logmel(config.corpus, config.n_mels)
        quantizer = build_quantizer(name, size, config)
        model = LogMelVQVAE(quantizer, config.n_mels, config.hidden, config.code_dim)
        setup = TrainSetup(
            steps=config.steps,
            batch_size=config.batch_size,
            crop_frames=config.crop_frames,
            lr=config.lr,
            aux_weight=config.diversity_weight if quantizer.loss_is_diversity else 1.0,
            eval_every=config.eval_every,
        )
        valid = feats["valid"][1][: config.valid_utterances]
        trained = train_vqvae(model, feats["train"][1], valid, setup, ctx)
        test_utts, test_feats = feats["test"]
        start = time.perf_counter()
        sq_err, values, codes = evaluate_frames(model, test_feats, ctx.device)
        eval_seconds = time.perf_counter() - start
        items: Items = {
            "test": {
                "item_id": np.array([u.id for u in test_utts]),
                "sq_err": sq_err,
                "values": values,
            }
        }
        metrics = self.metrics_from_items(items, cell.config)
        curves = dict(trained.curves)
        if size:
            stats, counts = code_stats(codes, test_utts, size)
            metrics |= stats
            curves["code_counts"] = counts
        if hasattr(quantizer, "restarts"):
            metrics["restarted_entries"] = float(quantizer.restarts)
        metrics["parameters"] = float(sum(p.numel() for p in model.parameters()))
        timing = dict(trained.timing)
        audio_seconds = sum(len(f) for f in test_feats) * 0.01  # 10 ms frames
        timing["eval_samples_per_s"] = len(test_feats) / eval_seconds
        timing["rtf"] = eval_seconds / audio_seconds
        sample = torch.zeros(config.batch_size, config.crop_frames, config.n_mels)
        timing |= flops_timing(
            lambda: model.eval()(sample.to(ctx.device)),
            len(sample),
            ctx,
            timing.get("train_samples_per_s"),
        )
        return CellResult(metrics, curves, timing, items)
