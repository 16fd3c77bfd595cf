"""Grapheme-to-phoneme on CMUdict: how the decoder is trained -> PER and WER.

A character encoder (BiGRU) with a GRU or a Transformer attention decoder (the ``arch``
axis) is trained from scratch on CMUdict words with each forcing strategy of
``methods.forcing`` (teacher forcing, scheduled sampling with three schedules, professor
forcing), decoded greedily and with beam search, and scored per word against its several
pronunciations (``bench.metrics.g2p``: right if it matches any, PER against the closest);
the error rate by output position shows exposure bias.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from bench import harness, registry
from bench.config import build_config, scale_config
from bench.context import RunContext
from bench.data import cmudict_g2p
from bench.metrics.g2p import g2p_forms, rates_from_columns, score_words
from bench.metrics.weighted import ItemForm
from bench.models.g2p import ModelConfig, PairBatches, Seq2Seq, Vocab, decode_words
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import CellResult, Items, Task
from bench.training import StepOutput, train, warmup_hold_decay

ARCHS = ("gru", "transformer")
FORCING = (
    "teacher",
    "scheduled_linear",
    "scheduled_exponential",
    "scheduled_inverse_sigmoid",
    "professor",
)


@dataclass
class G2PConfig:
    words: int | None = 3000  # words drawn from CMUdict before the split (None: all)
    valid_fraction: float = 0.05
    test_fraction: float = 0.1
    split_seed: int = 0  # fixes the split for every method and seed
    keep_stress: bool = False  # keep ARPAbet stress digits (AH0) in the targets
    emb_dim: int = 64
    hidden: int = 128
    layers: int = 2  # Transformer decoder layers
    heads: int = 4
    ff_dim: int = 256
    dropout: float = 0.1
    steps: int = 400  # updates
    batch_size: int = 64  # (word, pronunciation) pairs per update
    lr: float = 2e-3  # Adam, constant after a short warm-up, linear decay over the last 30%
    eval_every: int = 100  # updates between validation PER points
    valid_words: int = 300  # valid words decoded for the validation curve (<= the split)
    beam_width: int = 4
    max_position: int = 20  # error-by-position curve length (output positions)
    # weight of professor forcing's C_f term; Lamb et al. add it with weight 1, which swamps
    # the NLL in runs this short (quick GRU: test PER 58% at 1.0, 28% at 0.1)
    professor_weight: float = 0.1
    threads: int = 1  # torch CPU threads in a cell: these small step loops run faster on one

    def validate(self) -> None:
        if min(self.steps, self.batch_size, self.eval_every, self.beam_width, self.threads) < 1:
            raise ValueError(f"invalid g2p config: {self}")

    def model(self, arch: str) -> ModelConfig:
        names = {f.name for f in fields(ModelConfig)} - {"arch"}
        return build_config(ModelConfig, {n: getattr(self, n) for n in names}, arch=arch)


SCALE_CONFIGS: dict[str, dict[str, Any]] = {
    "quick": {"words": 2000, "steps": 150, "eval_every": 75, "valid_words": 100},
    "default": {  # 3 seeds x 10 cells in about 15-20 min on 2 idle CPU cores
        "words": 20000,
        "test_fraction": 0.05,
        "steps": 300,
        "eval_every": 100,
        "valid_words": 200,
    },
    "full": {
        "words": None,
        "steps": 30000,
        "eval_every": 2000,
        "valid_words": 2000,
        "hidden": 256,
        "emb_dim": 128,
        "ff_dim": 512,
        "batch_size": 128,
        "beam_width": 8,
    },
}


ROWS = [{"forcing": f, "arch": a} for a in ARCHS for f in FORCING]


def train_g2p(
    model: Seq2Seq,
    strategy: torch.nn.Module,
    data: cmudict_g2p.G2PData,
    vocabs: tuple[Vocab, Vocab],
    config: G2PConfig,
    ctx: RunContext,
) -> tuple[dict[str, list], dict[str, float | None], dict[str, np.ndarray]]:
    """Train ``model`` with the forcing ``strategy``; return the curves, the timing and the
    per-word items of the last validation pass (greedy)."""
    graphemes, phonemes = vocabs
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    disc_params = list(strategy.parameters())  # a discriminator, if the strategy has one
    disc_opt = torch.optim.Adam(disc_params, lr=config.lr) if disc_params else None
    batches = PairBatches(data.train, graphemes, phonemes, config.batch_size, ctx.rng())
    valid_words = [w for w, _ in data.valid[: config.valid_words]]
    valid_refs = [p for _, p in data.valid[: config.valid_words]]
    dev: dict[str, np.ndarray] = {"item_id": np.array(valid_words)}  # the last valid pass

    def forward(step: int) -> StepOutput:
        src, inputs, tgt = batches.next(ctx.device)
        model.train()
        out = strategy(model, src, inputs, tgt, step)
        logs = {"train_nll": out.nll.item(), "teacher_prob": out.teacher_prob}
        if out.discriminator_loss is not None:
            logs["disc_loss"] = out.discriminator_loss.item()
        return StepOutput(out.loss, items=len(src), logs=logs, extra=out.discriminator_loss)

    def update(out: StepOutput, step: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if disc_opt is not None and isinstance(out.extra, torch.Tensor):
            disc_opt.zero_grad(set_to_none=True)  # drop the generator term's gradients
            out.extra.backward()
            disc_opt.step()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def evaluate(step: int) -> dict[str, float]:
        hyps = decode_words(model, valid_words, graphemes, phonemes, ctx.device)
        scores = score_words(valid_refs, hyps)
        dev.update(scores.columns("greedy"))
        return {"valid_per": scores.rates()[0]}

    result = train(
        forward,
        config.steps,
        ctx,
        optimizer=optimizer,
        update=update,
        schedule=warmup_hold_decay(config.steps),
        evaluate=evaluate,
        eval_every=config.eval_every,
        eval_key="valid_step",
        desc=f"g2p {strategy.registry_name}",
    )
    result.curves.pop("train_loss")  # the NLL is the curve (train_nll); the loss adds C_f
    return result.curves, result.timing, dev


@register("task", "g2p")
class G2PTask(Task):
    """CMUdict G2P, forcing strategy x decoder architecture -> PER and WER."""

    title = "Grapheme-to-phoneme on CMUdict: decoder training strategies (PER and WER)"
    families = ("forcing", "arch")
    axes = {"arch": ARCHS}
    rows = {scale: ROWS for scale in SCALE_CONFIGS}
    baseline = {"forcing": "teacher"}
    suite_seeds = {"quick": 1}
    table_metrics = (
        "test_per_greedy",
        "test_wer_greedy",
        "test_per_beam",
        "test_wer_beam",
        "dev_per_greedy",
    )

    def config(self, scale: str) -> dict:
        return scale_config(G2PConfig, SCALE_CONFIGS, scale)

    def dataset_card(self, config: dict) -> str:
        cfg = build_config(G2PConfig, config)
        return cmudict_g2p.card(self._data(cfg), cfg.keep_stress, cfg.split_seed)

    @staticmethod
    def _data(cfg: G2PConfig) -> cmudict_g2p.G2PData:
        return cmudict_g2p.load(
            cfg.words, cfg.split_seed, cfg.valid_fraction, cfg.test_fraction, cfg.keep_stress
        )

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(G2PConfig, cell.config)
        with harness.torch_threads(config.threads):
            return self._run(cell, config, ctx)

    def _run(self, cell: Cell, config: G2PConfig, ctx: RunContext) -> CellResult:
        data = self._data(config)
        vocabs = graphemes, phonemes = Vocab(data.graphemes), Vocab(data.phonemes)
        model = Seq2Seq(len(graphemes), len(phonemes), config.model(cell.method["arch"]))
        model = model.to(ctx.device)
        strategy = registry.build(
            "forcing",
            cell.method["forcing"],
            total_steps=config.steps,
            hidden_dim=config.hidden,
            adversarial_weight=config.professor_weight,
        ).to(ctx.device)
        curves, timing, dev = train_g2p(model, strategy, data, vocabs, config, ctx)
        words, refs = [w for w, _ in data.test], [p for _, p in data.test]
        t0 = time.perf_counter()
        greedy = decode_words(model, words, graphemes, phonemes, ctx.device)
        t1 = time.perf_counter()
        beam = decode_words(model, words, graphemes, phonemes, ctx.device, config.beam_width)
        t2 = time.perf_counter()
        g = score_words(refs, greedy, config.max_position)
        b = score_words(refs, beam, config.max_position)
        test = {"item_id": np.array(words), **g.columns("greedy"), **b.columns("beam")}
        items = {"test": test, "dev": dev}
        metrics = self.metrics_from_items(items, cell.config)
        metrics["parameters"] = float(sum(p.numel() for p in model.parameters()))
        curves.update(
            position_error=g.position_error,
            position_count=g.position_count,
            position_error_beam=b.position_error,
            examples=[
                [w, " ".join(h), " ".join(r[0])]
                for w, h, r in zip(words[:5], greedy, refs, strict=False)
            ],
        )
        timing.update(
            decode_greedy_words_per_s=len(words) / (t1 - t0),
            decode_beam_words_per_s=len(words) / (t2 - t1),
        )
        return CellResult(metrics=metrics, curves=curves, timing=timing, items=items)

    def item_forms(self, config: dict) -> dict[str, ItemForm]:
        return g2p_forms()

    def metrics_from_items(self, items: Items, config: dict) -> dict[str, float]:
        """PER and WER of each decoder on test, and the greedy PER on the valid words."""
        test_greedy, test_beam = (rates_from_columns(items["test"], d) for d in ("greedy", "beam"))
        return {
            "test_per_greedy": test_greedy[0],
            "test_wer_greedy": test_greedy[1],
            "test_per_beam": test_beam[0],
            "test_wer_beam": test_beam[1],
            "dev_per_greedy": rates_from_columns(items["dev"], "greedy")[0],
        }
