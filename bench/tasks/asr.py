"""Speech recognition fine-tuning -> WER and CER, in English and Latvian.

A CTC character recogniser: a front end (the wav2vec-style network pre-trained as in the
SSL task, the same network randomly initialised, or log-mel features into a Transformer
trained from scratch) with a linear CTC head over the language's characters, fine-tuned on
a labeled subset of the train speakers. As in wav2vec 2.0's fine-tuning, the feature
encoder stays frozen and the context network is frozen for the first updates (only the
head learns), then trained too. Decoding is greedy, and beam search with a word n-gram LM
built from the training transcripts. The labeled-data amount is an axis of the grid. Per
item: word and character edits and reference lengths per utterance, greedy and with LM.

English runs on the embedded corpus, or on LibriSpeech with ``--data librispeech=PATH``
(train subsets for fine-tuning, dev-clean as dev, test-clean and test-other as tests);
Latvian always runs on the embedded corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench import registry
from bench.config import build_config, scale_config
from bench.context import RunContext
from bench.data import synthetic
from bench.data.asr_splits import Subset, embedded_splits, labeled_subset, librispeech_splits
from bench.data.text_norm import alphabet, characters, normalize
from bench.metrics.asr import rate_forms, rate_from_counts, word_char_edits
from bench.models.ctc_recognizer import CTCRecognizer, batch_waves, transcribe
from bench.models.ngram_lm import NgramLM
from bench.models.pretraining import PRETRAIN_SCALES, PretrainConfig
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import NONE, CellResult, ItemForm, Items, Task
from bench.training import StepOutput, TrainResult, sgd_update, train, warmup_linear_decay

SAMPLE_RATE = 16000
LABELED = {"2min": 120.0, "5min": 300.0, "10min": 600.0, "60min": 3600.0, "all": float("inf")}


@dataclass
class ASRConfig:
    corpus: str = "quick"
    steps: int = 300  # fine-tuning updates
    freeze_steps: int = 60  # updates with the context network frozen (head only)
    batch_size: int = 8
    lr: float = 2e-3  # Adam, linear warm-up then linear decay
    beam_width: int = 16
    lm_order: int = 3
    lm_weight: float = 0.5
    word_bonus: float = 0.5

    def validate(self) -> None:
        if self.steps < 1 or self.freeze_steps < 0 or self.beam_width < 1:
            raise ValueError(f"invalid ASR config: {self}")


SCALE_CONFIGS = {
    "quick": {"corpus": "quick", "steps": 250, "freeze_steps": 25},
    "default": {"corpus": "default", "steps": 600, "freeze_steps": 60},
    "full": {"corpus": "full", "steps": 20000, "freeze_steps": 2000, "batch_size": 16},
}
BASELINE = ("logmel", NONE, NONE)
RANDOM = ("wav2vec_random", NONE, NONE)
FRONTENDS: dict[str, tuple[tuple[str, str, str], ...]] = {  # (frontend, quantizer, objective)
    "quick": (BASELINE, ("wav2vec", "gumbel", "contrastive")),
    "default": (
        BASELINE,
        RANDOM,
        ("wav2vec", "gumbel", "contrastive"),
        ("wav2vec", NONE, "data2vec"),
    ),
    "full": (  # every pre-trained row of the SSL task
        BASELINE,
        RANDOM,
        *(("wav2vec", q, "contrastive") for q in ("gumbel", "vq", "none")),
        *(("wav2vec", "gumbel", o) for o in ("triplet", "proxy")),
        ("wav2vec", NONE, "data2vec"),
    ),
}
# per suite scale and language (the default Latvian train split is 13 min)
LABELED_AXIS: dict[str, dict[str, tuple[str, ...]]] = {
    "quick": {"en": ("all",), "lv": ("all",)},
    "default": {"en": ("10min", "all"), "lv": ("all",)},
    "full": {"en": ("10min", "60min", "all"), "lv": ("10min", "all")},
}
ROWS = {
    scale: [
        {"frontend": f, "quantizer": q, "objective": o, "language": lang, "labeled": lab}
        for f, q, o in FRONTENDS[scale]
        for lang in ("en", "lv")
        for lab in LABELED_AXIS[scale][lang]
    ]
    for scale in SCALE_CONFIGS
}


def fine_tune(
    model: CTCRecognizer,
    audio: Subset,
    targets: list[torch.Tensor],
    config: ASRConfig,
    ctx: RunContext,
) -> TrainResult:
    """CTC fine-tuning; the context network is frozen for the first ``freeze_steps``."""
    rng = ctx.rng()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], config.lr)
    context_params = list(model.context.parameters())

    def forward(step: int) -> StepOutput:
        for p in context_params:
            p.requires_grad_(step >= config.freeze_steps)
        idx = rng.choice(len(audio), size=min(config.batch_size, len(audio)), replace=False)
        wav, lengths = batch_waves(audio, list(idx))
        labels = [targets[i] for i in idx]
        with ctx.autocast():
            log_probs = model(wav.to(ctx.device)).float()
        loss = F.ctc_loss(
            log_probs.transpose(0, 1),
            torch.cat(labels),
            torch.tensor([model.frames(n) for n in lengths]),
            torch.tensor([len(t) for t in labels]),
            blank=0,
            zero_infinity=True,
        )
        return StepOutput(loss, items=len(idx))

    model.train()
    return train(
        forward,
        config.steps,
        ctx,
        optimizer=optimizer,
        update=sgd_update(optimizer, clip_grad_norm=5.0),
        schedule=warmup_linear_decay(config.steps, 0.1),
        loss_key="finetune_loss",
        desc="fine-tune",
    )


@register("task", "asr")
class ASRTask(Task):
    """CTC character recognisers fine-tuned from each front end -> WER and CER."""

    title = "Speech recognition fine-tuning (CTC characters): WER and CER, greedy and with LM"
    families = ("frontend", "quantizer", "objective", "language", "labeled")
    axes = {"language": ("en", "lv"), "labeled": tuple(LABELED)}
    rows = ROWS
    baseline = {"frontend": "logmel", "quantizer": NONE, "objective": NONE}
    suite_seeds = {"quick": 1, "default": 2}
    accepts_data = ("librispeech",)
    headline = "test_cer_lm"
    table_metrics = (
        "test_wer",
        "test_cer",
        "test_wer_lm",
        "test_cer_lm",
        "dev_cer",
        "test_other_wer",
        "test_other_wer_lm",
    )

    def config(self, scale: str) -> dict[str, Any]:
        pretraining = scale_config(PretrainConfig, PRETRAIN_SCALES, scale)
        return {**scale_config(ASRConfig, SCALE_CONFIGS, scale), "pretraining": pretraining}

    def data_identity(self, config: dict[str, Any]) -> Any:
        embedded = synthetic.identity(synthetic.ensure_corpus(config["corpus"]))
        return {"embedded": embedded, **config.get("data", {})}

    def dataset_card(self, config: dict[str, Any]) -> str:
        return synthetic.card(synthetic.ensure_corpus(config["corpus"]))

    def item_forms(self, config: dict[str, Any]) -> dict[str, ItemForm]:
        return rate_forms(("dev", "test", "test_other"))

    def metrics_from_items(self, items: Items, config: dict[str, Any]) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for split, c in items.items():
            for kind, suffix in (("word", ""), ("char", ""), ("word", "_lm"), ("char", "_lm")):
                if f"{kind}_edits{suffix}" in c:
                    rate = rate_from_counts(c[f"{kind}_edits{suffix}"], c[f"{kind}_len"])
                    metrics[f"{split}_{kind[0]}er{suffix}"] = rate
        if "test" in items:
            kept = items["test"]["word_len"] > 0
            for kind in ("sub", "del", "ins"):
                name = {"sub": "substitutions", "del": "deletions", "ins": "insertions"}[kind]
                metrics[f"test_{name}"] = int(items["test"][f"word_{kind}"][kept].sum())
        return metrics

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        raw = dict(cell.config)
        pretraining = build_config(PretrainConfig, raw.pop("pretraining"))
        data = raw.pop("data", {})
        config = build_config(ASRConfig, raw)
        m = cell.method
        lang = m["language"]
        tokens = alphabet(lang)
        index = {t: i + 1 for i, t in enumerate(tokens)}
        if lang == "en" and "librispeech" in data:
            splits = librispeech_splits(data["librispeech"])
        else:
            splits = embedded_splits(config.corpus, lang)
        train_split = splits.pop("train")
        chosen, seconds = labeled_subset(train_split.lengths, LABELED[m["labeled"]], ctx.rng())
        texts = [normalize(train_split.utts[i].transcript or "", lang) for i in chosen]
        targets = [torch.tensor([index[c] for c in characters(t, lang)]) for t in texts]
        lm = NgramLM(order=config.lm_order).fit(
            [normalize(u.transcript or "", lang).split() for u in train_split.utts]
        )  # all train text, labeled or not
        frontend = registry.build(
            "frontend",
            m["frontend"],
            quantizer=None if m["quantizer"] == NONE else m["quantizer"],
            objective=m["objective"],
            pretraining=pretraining,
            ctx=ctx,
            watch=None,
        )
        curves: dict[str, list] = {}
        if frontend.pretraining is not None:
            curves["pretrain_loss"] = frontend.pretraining["curves"]["pretrain_loss"]
        model = CTCRecognizer(frontend, len(tokens), pretraining.model_size).to(ctx.device)
        tuned = fine_tune(model, Subset(train_split.audio, chosen), targets, config, ctx)
        curves["finetune_loss"] = tuned.curves["finetune_loss"]
        timing = dict(tuned.timing)
        items: Items = {}
        for name, split in splits.items():
            refs = [normalize(u.transcript or "", lang) for u in split.utts]
            beam = name != "dev"  # dev is for model selection: greedy only, to save time
            decoding = (config.beam_width, config.lm_weight, config.word_bonus)
            hyps, hyps_lm, secs = transcribe(model, split.audio, tokens, lm, ctx, *decoding, beam)
            ids = np.array([u.id for u in split.utts])
            items[name] = {"item_id": ids, **word_char_edits(refs, hyps)}
            if beam:
                lm_edits = word_char_edits(refs, hyps_lm)
                items[name] |= {f"{k}_lm": lm_edits[k] for k in ("word_edits", "char_edits")}
            if name == "test":
                audio_s = sum(split.lengths) / SAMPLE_RATE
                timing["decode_rtf_greedy"] = (secs["net"] + secs["greedy"]) / audio_s
                timing["decode_rtf_beam"] = (secs["net"] + secs["beam"]) / audio_s
                curves["examples"] = [
                    list(e) for e in zip(refs[:3], hyps[:3], hyps_lm[:3], strict=True)
                ]
        metrics = {"labeled_seconds": seconds, **self.metrics_from_items(items, cell.config)}
        return CellResult(metrics=metrics, curves=curves, timing=timing, items=items)
