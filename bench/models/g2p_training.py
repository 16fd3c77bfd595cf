"""The G2P training loop: a ``Seq2Seq`` trained with one forcing strategy.

Shared by the ``g2p`` task (every strategy's student) and the distillation teacher
(``bench.models.g2p_teacher``, trained with teacher forcing), so both run the same loop:
Adam with warm-up/hold/decay, gradient clipping at 1, and greedy validation PER points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from bench.context import RunContext
from bench.metrics.g2p import score_words
from bench.models.g2p import PairBatches, Seq2Seq, Vocab, decode_words
from bench.training import StepOutput, train, warmup_hold_decay

Pairs = Sequence[tuple[str, Sequence[Sequence[str]]]]  # (word, its pronunciations)


class TrainSettings(Protocol):
    """The fields of the task's config that the loop reads."""

    steps: int
    batch_size: int
    lr: float
    eval_every: int
    valid_words: int


def train_g2p(
    model: Seq2Seq,
    strategy: torch.nn.Module,
    train_pairs: Pairs,
    valid: Pairs,
    vocabs: tuple[Vocab, Vocab],
    config: TrainSettings,
    ctx: RunContext,
    desc: str | None = None,
) -> tuple[dict[str, list], dict[str, float | None], dict[str, np.ndarray]]:
    """Train ``model`` with the forcing ``strategy`` on ``train_pairs``; return the curves,
    the timing and the per-word items of the last validation pass (greedy)."""
    graphemes, phonemes = vocabs
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    disc_params = list(strategy.parameters())  # a discriminator, if the strategy has one
    disc_opt = torch.optim.Adam(disc_params, lr=config.lr) if disc_params else None
    batches = PairBatches(train_pairs, graphemes, phonemes, config.batch_size, ctx.rng())
    valid_words = [w for w, _ in valid[: config.valid_words]]
    valid_refs = [p for _, p in valid[: config.valid_words]]
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
        desc=desc or f"g2p {strategy.registry_name}",
    )
    result.curves.pop("train_loss")  # the NLL is the curve (train_nll); the loss adds C_f
    return result.curves, result.timing, dev
