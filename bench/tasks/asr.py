"""Speech recognition fine-tuning -> WER and CER, in English and Latvian.

A CTC character recogniser (bench/models/ctc_recognizer.py): the wav2vec-style network
with a linear CTC head over the language's characters, fine-tuned whole on a labeled
subset of the train speakers with time and channel masking, padding masks and
normalised inputs. The ``logmel`` row is the log-mel network at its random initialisation
(a Transformer trained from scratch on log-mel); the pre-trained rows fine-tune the same
network after pre-training as in the SSL task, by the same recipe. Decoding is greedy,
and beam search with a word n-gram LM built from the training transcripts. The embedded
corpus's sentences all come from one template grammar, so the LM's gain there reflects
that grammar, not general language knowledge. The labeled-data amount is an axis of the
grid. ``frontend=hf`` (``--upstream PATH``) keeps a pretrained upstream of your own frozen
and trains a small downstream on the learned weighted sum of its layers instead
(bench.models.hf_asr). Per item: word and character edits and reference lengths per
utterance, greedy and with LM.

English runs on the embedded corpus, or on LibriSpeech with ``--data librispeech=PATH``
(train subsets for fine-tuning, dev-clean as dev, test-clean and test-other as tests);
Latvian always runs on the embedded corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench import registry
from bench.config import build_config, scale_config
from bench.context import RunContext
from bench.data import corpus_identity, synthetic, unlabeled_pool
from bench.data.asr_splits import Subset, embedded_splits, labeled_subset, librispeech_splits
from bench.data.text_norm import alphabet, characters, normalize
from bench.metrics.asr import rate_forms, rate_from_counts, word_char_edits
from bench.models.ctc_recognizer import FinetuneConfig, transcribe
from bench.models.hf_asr import NETWORKS, recogniser
from bench.models.hf_upstream import hf_grid, upstream_data_identity
from bench.models.ngram_lm import NgramLM
from bench.models.pretraining import PRETRAIN_SCALES, PretrainConfig
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import NONE, CellResult, ItemForm, Items, Task

SAMPLE_RATE = 16000
LABELED = {"2min": 120.0, "5min": 300.0, "10min": 600.0, "60min": 3600.0, "all": float("inf")}


@dataclass
class ASRConfig:
    corpus: str = "quick"
    steps: int = 300  # fine-tuning updates
    freeze_steps: int = 60  # updates with the network frozen (head only)
    batch_size: int = 8
    lr: float = 1e-3  # Adam, linear warm-up then linear decay
    beam_width: int = 16
    lm_order: int = 3
    lm_weight: float = 0.5
    word_bonus: float = 0.5
    upstream: str = ""  # frontend=hf: a local transformers checkpoint folder (--upstream)

    def validate(self) -> None:
        if self.steps < 1 or self.freeze_steps < 0 or self.beam_width < 1:
            raise ValueError(f"invalid ASR config: {self}")

    def finetuning(self) -> FinetuneConfig:
        return FinetuneConfig(
            steps=self.steps,
            freeze_steps=self.freeze_steps,
            batch_size=self.batch_size,
            lr=self.lr,
        )


SCALE_CONFIGS = {
    "quick": {"corpus": "quick", "steps": 250, "freeze_steps": 25},
    "default": {"corpus": "default", "steps": 600, "freeze_steps": 60},
    "full": {"corpus": "full", "steps": 20000, "freeze_steps": 2000, "batch_size": 16},
}
BASELINE = ("logmel", NONE, NONE)
RANDOM = ("wav2vec_random", NONE, NONE)
FRONTENDS: dict[str, tuple[tuple[str, str, str], ...]] = {  # (frontend, quantizer, objective)
    # the log-mel row is the quick and default suites' network at random init (their
    # pre-training uses the log-mel stem), so a separate random row would repeat it
    "quick": (BASELINE, ("wav2vec", "gumbel", "contrastive")),
    "default": (
        BASELINE,
        *(("wav2vec", q, "contrastive") for q in ("gumbel", "vq", "none")),
        ("wav2vec", NONE, "data2vec"),
        ("wav2vec", "random_projection", "code_prediction"),
    ),
    "full": (  # every pre-trained row of the SSL task; random init of the waveform network
        BASELINE,
        RANDOM,
        *(("wav2vec", q, "contrastive") for q in ("gumbel", "vq", "none")),
        *(("wav2vec", "gumbel", o) for o in ("triplet", "proxy")),
        ("wav2vec", NONE, "data2vec"),
        ("wav2vec", "random_projection", "code_prediction"),
    ),
}
# per suite scale and language (the default Latvian train split is 24 min)
LABELED_AXIS: dict[str, dict[str, tuple[str, ...]]] = {
    "quick": {"en": ("all",), "lv": ("all",)},
    "default": {"en": ("10min", "all"), "lv": ("all",)},  # the suite runs "all" (below)
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


@register("task", "asr")
class ASRTask(Task):
    """CTC character recognisers fine-tuned from each front end -> WER and CER."""

    title = "Speech recognition fine-tuning (CTC characters): WER and CER, greedy and with LM"
    families = ("frontend", "quantizer", "objective", "language", "labeled")
    axes = {"language": ("en", "lv"), "labeled": tuple(LABELED)}
    rows = ROWS
    baseline = {"frontend": "logmel", "quantizer": NONE, "objective": NONE}
    suite_seeds = {"quick": 1}
    # default suite (60-min budget): wav2vec 2.0 vs log-mel, all English labels; see --methods
    suite_methods = {
        "default": {
            "quantizer": ["gumbel"],
            "objective": ["contrastive"],
            "language": ["en"],
            "labeled": ["all"],
        }
    }
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
        embedded = corpus_identity.identity(synthetic.ensure_corpus(config["corpus"]))
        pool = unlabeled_pool.pool_identity(config["pretraining"]["corpus"])
        identity = {"embedded": embedded, "pretraining_pool": pool, **config.get("data", {})}
        return upstream_data_identity(identity, config)

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        hf_fixed = {"quantizer": NONE, "objective": NONE}  # a frozen upstream of your own
        return hf_grid(super().grid(selected, scale), self.baseline, hf_fixed, NETWORKS, self.name)

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
            upstream=config.upstream,
            ctx=ctx,
        )
        curves: dict[str, list] = {}
        if frontend.pretraining is not None:
            curves["pretrain_loss"] = frontend.pretraining["curves"]["pretrain_loss"]
        lengths = [train_split.lengths[i] for i in chosen]
        model, tuned = recogniser(
            frontend,
            m["frontend"],
            len(tokens),
            Subset(train_split.audio, chosen),
            targets,
            config.finetuning(),
            ctx,
            lengths,
        )
        if (weights := getattr(model, "featurize", None)) is not None:
            curves["layer_weights"] = weights.layer_weights()
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
