"""Grapheme-to-phoneme on CMUdict: how the decoder is trained -> PER and WER.

A character encoder (BiGRU) with a GRU or a Transformer attention decoder (the ``arch``
axis) is trained from scratch on CMUdict words with each forcing strategy of
``methods.forcing`` (teacher forcing, scheduled sampling with three schedules, professor
forcing) and decoded greedily and with beam search. Scoring follows G2P practice with
several reference pronunciations: a word is right (WER) if the output matches any of
them, and PER counts edits against the closest one. The error rate by output position
shows exposure bias (errors compounding along the output).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from bench import harness
from bench.config import build_config, scale_config
from bench.data import cmudict_g2p
from bench.metrics.asr import token_error_rate
from bench.models.g2p import EOS, PAD, ModelConfig, Seq2Seq, Vocab, beam_decode, greedy_decode
from bench.registry import register
from bench.store import Cell, Record
from bench.tasks.base import CellResult, Figure, RunContext, Task
from methods import forcing

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


SCALE_CONFIGS = {
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


# ---------------------------------------------------------------- scoring
def align_errors(ref, hyp) -> tuple[int, list[bool]]:
    """Levenshtein distance of ``hyp`` to ``ref`` and, per reference position, whether that
    reference token was substituted or deleted on one optimal alignment."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(
                d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]), d[i - 1, j] + 1, d[i, j - 1] + 1
            )
    wrong, i, j = [False] * n, n, m
    while i > 0:
        if j > 0 and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            wrong[i - 1] = ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:  # deletion of ref[i-1]
            wrong[i - 1] = True
            i -= 1
        else:  # insertion of hyp[j-1]
            j -= 1
    return int(d[n, m]), wrong


def score(references: list, hypotheses: list[list[str]], max_position: int = 20) -> dict:
    """PER against each word's closest reference, WER against any reference, and the error
    rate per reference position (errors compounding along the output show exposure bias).

    ``references[k]`` holds every pronunciation of word k; ties in distance go to the
    pronunciation listed first.
    """
    chosen, wrong_words = [], 0
    pos_err, pos_n = np.zeros(max_position), np.zeros(max_position)
    for prons, hyp in zip(references, hypotheses, strict=True):
        aligned = [align_errors(list(p), hyp) for p in prons]
        best = min(range(len(prons)), key=lambda k: aligned[k][0])
        chosen.append(list(prons[best]))
        wrong_words += aligned[best][0] > 0
        for pos, bad in enumerate(aligned[best][1][:max_position]):
            pos_n[pos] += 1
            pos_err[pos] += bad
    per = token_error_rate(chosen, hypotheses).rate
    by_pos = [float(e / n) if n else None for e, n in zip(pos_err, pos_n, strict=True)]
    return {
        "per": per,
        "wer": wrong_words / len(references),
        "position_error": by_pos,
        "position_count": pos_n.astype(int).tolist(),
    }


# ---------------------------------------------------------------- training
def _pad(rows: list[list[int]]) -> torch.Tensor:
    out = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
    for k, r in enumerate(rows):
        out[k, : len(r)] = torch.tensor(r)
    return out


def _lr_at(step: int, steps: int, lr: float) -> float:
    warm = max(1, steps // 20)
    if step < warm:
        return lr * (step + 1) / warm
    decay_from = int(0.7 * steps)
    if step < decay_from:
        return lr
    return lr * max(0.1, 1 - (step - decay_from) / max(1, steps - decay_from))


def decode(model, words: list[str], graphemes: Vocab, phonemes: Vocab, ctx, beam: int = 0):
    """Greedy (beam=0, in batches) or beam-search phoneme outputs of ``words``."""
    model.eval()
    out: list[list[str]] = []
    if beam:
        for w in words:
            src = torch.tensor([graphemes.encode(w)], device=ctx.device)
            out.append(phonemes.decode(beam_decode(model, src, beam, _max_len(w))))
        return out
    for start in range(0, len(words), 256):
        chunk = words[start : start + 256]
        src = _pad([graphemes.encode(w) for w in chunk]).to(ctx.device)
        ids = greedy_decode(model, src, max(_max_len(w) for w in chunk))
        out += [phonemes.decode(row) for row in ids]
    return out


def _max_len(word: str) -> int:
    return min(2 * len(word) + 5, 60)


def train(model, strategy, data, graphemes, phonemes, config: G2PConfig, seed: int, ctx):
    pairs = [
        (graphemes.encode(w), phonemes.encode(p, eos=True))
        for w, prons in data.train
        for p in prons
    ]
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    disc_params = list(strategy.parameters())
    disc_opt = torch.optim.Adam(disc_params, lr=config.lr) if disc_params else None
    timer = harness.StepTimer(ctx.device, skip=min(3, config.steps // 4))
    valid_words = [w for w, _ in data.valid[: config.valid_words]]
    valid_refs = [p for _, p in data.valid[: config.valid_words]]
    curves: dict[str, list] = {k: [] for k in ("train_nll", "teacher_prob", "disc_loss")}
    curves.update(valid_step=[], valid_per=[])
    order, cursor = rng.permutation(len(pairs)), 0
    bar = ctx.progress(range(config.steps), desc=f"g2p {strategy.registry_name}", unit="step")
    for step in bar:
        if cursor + config.batch_size > len(order):
            order, cursor = rng.permutation(len(pairs)), 0
        batch = [pairs[i] for i in order[cursor : cursor + config.batch_size]]
        cursor += config.batch_size
        src = _pad([s for s, _ in batch]).to(ctx.device)
        tgt = _pad([t for _, t in batch]).to(ctx.device)
        inputs = torch.cat([torch.full_like(tgt[:, :1], forcing.BOS), tgt[:, :-1]], 1)
        inputs = inputs.masked_fill(inputs.eq(EOS) & tgt.eq(PAD), PAD)  # no </s> fed after the end
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config.steps, config.lr)
        model.train()
        with timer.step(items=len(batch)):
            out = strategy(model, src, inputs, tgt, step)
            if not torch.isfinite(out.loss):
                raise FloatingPointError(
                    f"g2p loss became {out.loss.item()} at step {step}; lower lr (now {config.lr})"
                )
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if disc_opt is not None and out.discriminator_loss is not None:
                disc_opt.zero_grad(set_to_none=True)  # drop the generator term's gradients
                out.discriminator_loss.backward()
                disc_opt.step()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        curves["train_nll"].append(out.nll.item())
        curves["teacher_prob"].append(out.teacher_prob)
        if out.discriminator_loss is not None:
            curves["disc_loss"].append(out.discriminator_loss.item())
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            hyps = decode(model, valid_words, graphemes, phonemes, ctx)
            curves["valid_step"].append(step + 1)
            curves["valid_per"].append(score(valid_refs, hyps)["per"])
            bar.set_postfix(nll=f"{out.nll.item():.3f}", valid_per=f"{curves['valid_per'][-1]:.3f}")
    if not curves["disc_loss"]:
        del curves["disc_loss"]
    step_t = timer.summary()
    timing = {
        "train_samples_per_s": timer.items_per_s(),
        "step_ms_median": step_t.median_ms if step_t else None,
    }
    return curves, timing


@register("task", "g2p")
class G2PTask(Task):
    """CMUdict G2P, forcing strategy x decoder architecture -> PER and WER."""

    title = "Grapheme-to-phoneme on CMUdict: decoder training strategies (PER and WER)"
    families = ("forcing", "arch")
    defaults = {"forcing": FORCING}
    axes = {"arch": ARCHS}
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

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        """Forcing strategies x decoder architectures, narrowed by --methods."""
        selected = selected or {}
        names = selected.get("forcing") or list(FORCING)
        from bench import registry

        for name in names:
            registry.get("forcing", name)  # fail early on an unknown name
        archs = selected.get("arch") or list(ARCHS)
        return [{"forcing": f, "arch": a} for a in archs for f in names]

    def dataset_card(self, config: dict) -> str:
        cfg = build_config(G2PConfig, config)
        data = self._data(cfg)
        return cmudict_g2p.card(data, cfg.keep_stress, cfg.split_seed)

    @staticmethod
    def _data(cfg: G2PConfig) -> cmudict_g2p.G2PData:
        return cmudict_g2p.load(
            cfg.words, cfg.split_seed, cfg.valid_fraction, cfg.test_fraction, cfg.keep_stress
        )

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(G2PConfig, cell.config)
        before = torch.get_num_threads()
        torch.set_num_threads(config.threads)
        try:
            return self._run(cell, config, ctx)
        finally:
            torch.set_num_threads(before)

    def _run(self, cell: Cell, config: G2PConfig, ctx: RunContext) -> CellResult:
        arch, name = cell.method["arch"], cell.method["forcing"]
        data = self._data(config)
        graphemes, phonemes = Vocab(data.graphemes), Vocab(data.phonemes)
        harness.seed_everything(cell.seed)
        model = Seq2Seq(len(graphemes), len(phonemes), config.model(arch)).to(ctx.device)
        strategy = forcing.build(name, config.steps, config.hidden, config.professor_weight)
        strategy = strategy.to(ctx.device)
        curves, timing = train(model, strategy, data, graphemes, phonemes, config, cell.seed, ctx)
        words = [w for w, _ in data.test]
        refs = [p for _, p in data.test]
        t0 = time.perf_counter()
        greedy = decode(model, words, graphemes, phonemes, ctx)
        t1 = time.perf_counter()
        beam = decode(model, words, graphemes, phonemes, ctx, beam=config.beam_width)
        t2 = time.perf_counter()
        g = score(refs, greedy, config.max_position)
        b = score(refs, beam, config.max_position)
        metrics = {
            "test_per_greedy": g["per"],
            "test_wer_greedy": g["wer"],
            "test_per_beam": b["per"],
            "test_wer_beam": b["wer"],
            "dev_per_greedy": curves["valid_per"][-1],
            "parameters": float(sum(p.numel() for p in model.parameters())),
        }
        curves.update(
            position_error=g["position_error"],
            position_count=g["position_count"],
            position_error_beam=b["position_error"],
            examples=[
                [w, " ".join(h), " ".join(r[0])]
                for w, h, r in zip(words[:5], greedy, refs, strict=False)
            ],
        )
        timing.update(
            decode_greedy_words_per_s=len(words) / (t1 - t0),
            decode_beam_words_per_s=len(words) / (t2 - t1),
        )
        return CellResult(metrics=metrics, curves=curves, timing=timing)

    def figures(self, records: list[Record], fig_dir: Path) -> Iterator[Figure]:
        from bench.report import g2p_figures

        yield from g2p_figures.draw(records, fig_dir)
