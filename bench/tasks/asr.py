"""Speech recognition fine-tuning -> WER and CER, in English and Latvian.

A CTC character recogniser: a front end (the SSL task's pre-trained network, the same
network randomly initialised, or log-mel features into a Transformer trained from
scratch) with a linear CTC head over the language's characters, fine-tuned on a labeled
subset of the train speakers. As in wav2vec 2.0's fine-tuning, the feature encoder stays
frozen and the context network is frozen for the first updates (only the head learns),
then trained too. Decoding is greedy, and beam search with a word n-gram LM built from
the training transcripts. The labeled-data amount is an axis of the grid.

English runs on the embedded corpus, or on LibriSpeech with ``--data librispeech=PATH``
(train subsets for fine-tuning, dev-clean as dev, test-clean and test-other as tests);
Latvian always runs on the embedded corpus.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn

from bench import harness
from bench.config import build_config, scale_config
from bench.data import synthetic
from bench.data.audio import read_audio
from bench.data.librispeech import load_librispeech
from bench.data.text_norm import alphabet, characters, normalize
from bench.metrics.asr import token_error_rate
from bench.models.ctc_decoding import beam_search, greedy
from bench.models.frontends import LogMel
from bench.models.ngram_lm import NgramLM
from bench.models.wav2vec import ContextNetwork, Wav2Vec, config_for
from bench.registry import register
from bench.store import Cell, Record
from bench.tasks import ssl_phoneme
from bench.tasks.base import CellResult, Figure, RunContext, Task

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
FRONTENDS = {  # per suite scale: (frontend, quantizer, objective) rows
    "quick": (("logmel", "-", "-"), ("pretrained", "gumbel", "contrastive")),
    "default": (
        ("logmel", "-", "-"),
        ("random", "-", "-"),
        ("pretrained", "gumbel", "contrastive"),
        ("pretrained", "none", "data2vec"),
    ),
    "full": (
        ("logmel", "-", "-"),
        ("random", "-", "-"),
        *(("pretrained", q, o) for q, o in ssl_phoneme.PRETRAINED),
    ),
}
LABELED_AXIS = {  # per suite scale and language (the default Latvian train split is 13 min)
    "quick": {"en": ("all",), "lv": ("all",)},
    "default": {"en": ("10min", "all"), "lv": ("all",)},
    "full": {"en": ("10min", "60min", "all"), "lv": ("10min", "all")},
}


@dataclass
class Split:
    """Utterances of one split with their audio (arrays, or read from disk on access)."""

    utts: list
    audio: Sequence[np.ndarray]
    lengths: list[int]  # samples per utterance, known without reading the audio

    @classmethod
    def in_memory(cls, utts, audio) -> Split:
        return cls(list(utts), audio, [len(a) for a in audio])


class LazyAudio(Sequence):
    """Audio of real-corpus utterances, read on access so a 100 h subset fits in memory."""

    def __init__(self, utts) -> None:
        self.paths = [u.path for u in utts]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        return read_audio(self.paths[i], expected_sample_rate=SAMPLE_RATE)


class Subset(Sequence):
    """The items ``indices`` of a sequence, without reading or copying them."""

    def __init__(self, base: Sequence, indices: list[int]) -> None:
        self.base, self.indices = base, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.base[self.indices[i]]


def librispeech_splits(root: str | Path) -> dict[str, Split]:
    """LibriSpeech subsets as the task's splits: train-* -> train, dev-clean -> dev,
    test-clean -> test, test-other -> test_other (missing dev/test subsets are skipped)."""
    items = load_librispeech(root)
    by_subset: dict[str, list] = {}
    for u in items:
        by_subset.setdefault(u.split, []).append(u)
    groups = {
        "train": [u for n, us in sorted(by_subset.items()) if n.startswith("train") for u in us],
        "dev": by_subset.get("dev-clean", []),
        "test": by_subset.get("test-clean", []),
        "test_other": by_subset.get("test-other", []),
    }
    found = sorted(by_subset)
    if not groups["train"] or not (groups["test"] or groups["test_other"]):
        raise ValueError(
            f"--data librispeech={root}: the ASR task needs a train-* subset and test-clean "
            f"or test-other; found subsets {found}. Point PATH at the folder holding them."
        )
    splits = {}
    for name, utts in groups.items():
        if utts:
            lengths = [sf.info(str(u.path)).frames for u in utts]
            splits[name] = Split(utts, LazyAudio(utts), lengths)
    return splits


def embedded_splits(corpus: str, language: str) -> dict[str, Split]:
    """The embedded corpus's train / valid (as dev) / test splits of one language."""
    names = {"train": "train", "dev": "valid", "test": "test"}
    loaded = {k: synthetic.load_split(corpus, v, language) for k, v in names.items()}
    return {k: Split.in_memory(*pair) for k, pair in loaded.items()}


def labeled_subset(lengths: list[int], seconds: float, seed: int) -> tuple[list[int], float]:
    """Indices of a seeded random subset of the train split holding about ``seconds``."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    chosen, total = [], 0.0
    for i in order:
        if total >= seconds:
            break
        chosen.append(int(i))
        total += lengths[i] / SAMPLE_RATE
    return chosen, total


class CTCRecognizer(nn.Module):
    """Front end -> context network -> linear CTC head over characters (+ blank)."""

    def __init__(self, frontend: str, backbone: Wav2Vec | None, n_tokens: int, size: str):
        super().__init__()
        self.frontend = frontend
        cfg = config_for(size)
        if backbone is None:  # log-mel features, two 10 ms frames stacked into 20 ms
            self.logmel = LogMel()
            self.input = nn.Linear(2 * 80, cfg.dim)
            self.context = ContextNetwork(cfg)
        else:
            self.backbone = backbone
            self.context = backbone.context
        self.head = nn.Linear(cfg.dim, n_tokens + 1)

    def frames(self, num_samples: int) -> int:
        if self.frontend == "logmel":
            return (num_samples // 160 + 1) // 2
        return self.backbone.encoder.frames(num_samples)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # (B, S) -> (B, T, V+1) log-probs
        if self.frontend == "logmel":
            feats = torch.stack([self.logmel(w) for w in wav])  # (B, T10, 80)
            t = feats.shape[1] // 2 * 2
            x = self.input(feats[:, :t].reshape(len(wav), t // 2, 160))
        else:
            with torch.no_grad():  # the feature encoder stays frozen
                z = self.backbone.features(wav)
            x = self.backbone.projection(z)
        return F.log_softmax(self.head(self.context(x)), -1)


def _batch(audio: Sequence[np.ndarray], idx: list[int]) -> tuple[torch.Tensor, list[int]]:
    """Zero-padded (B, S) waveforms of ``idx`` and their lengths in samples."""
    waves = [audio[i] for i in idx]
    out = np.zeros((len(waves), max(len(w) for w in waves)), dtype=np.float32)
    for row, w in enumerate(waves):
        out[row, : len(w)] = w
    return torch.from_numpy(out), [len(w) for w in waves]


def fine_tune(model: CTCRecognizer, audio, targets, config: ASRConfig, seed: int, ctx) -> dict:
    device = ctx.device
    rng = np.random.default_rng(seed)
    params = [p for n, p in model.named_parameters() if not n.startswith("backbone.encoder")]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    context_params = list(model.context.parameters())
    timer = harness.StepTimer(device, skip=min(3, config.steps // 4))
    losses = []
    model.train()
    bar = ctx.progress(range(config.steps), desc=f"fine-tune {model.frontend}", unit="step")
    for step in bar:
        frozen = step < config.freeze_steps
        for p in context_params:
            p.requires_grad_(not frozen)
        idx = rng.choice(len(audio), size=min(config.batch_size, len(audio)), replace=False)
        wav, lengths = _batch(audio, list(idx))
        wav = wav.to(device)
        in_len = torch.tensor([model.frames(n) for n in lengths])
        labels = [targets[i] for i in idx]
        for group in optimizer.param_groups:
            group["lr"] = ssl_phoneme.lr_at(step, config.steps, config.lr, 0.1)
        with timer.step(items=len(idx)):
            with ctx.autocast():
                log_probs = model(wav).float()
            loss = F.ctc_loss(
                log_probs.transpose(0, 1),
                torch.cat(labels),
                in_len,
                torch.tensor([len(t) for t in labels]),
                blank=0,
                zero_infinity=True,
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(f"CTC loss became {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return {"losses": losses, "samples_per_s": timer.items_per_s()}


@torch.no_grad()
def transcribe(model: CTCRecognizer, audio, tokens, lm, config: ASRConfig, ctx, beam=True):
    """Greedy and (if ``beam``) LM beam-search hypotheses, with decoding seconds of each."""
    model.eval()
    greedy_out, beam_out, t_net, t_greedy, t_beam = [], [], 0.0, 0.0, 0.0
    for wav in audio:
        t0 = time.perf_counter()
        log_probs = model(torch.from_numpy(wav).unsqueeze(0).to(ctx.device))[0].float().cpu()
        t1 = time.perf_counter()
        greedy_out.append(greedy(log_probs, tokens))
        t2 = time.perf_counter()
        if beam:
            beams = beam_search(
                log_probs, tokens, config.beam_width, lm, config.lm_weight, config.word_bonus
            )
            beam_out.append(beams[0][0] if beams else "")
        t3 = time.perf_counter()
        t_net, t_greedy, t_beam = t_net + t1 - t0, t_greedy + t2 - t1, t_beam + t3 - t2
    return greedy_out, beam_out, {"net": t_net, "greedy": t_greedy, "beam": t_beam}


def score(refs: list[str], hyps: list[str]) -> dict:
    words = token_error_rate([r.split() for r in refs], [h.split() for h in hyps])
    chars = token_error_rate(
        [list(r.replace(" ", "")) for r in refs], [list(h.replace(" ", "")) for h in hyps]
    )
    return {
        "wer": words.rate,
        "cer": chars.rate,
        "sub": words.substitutions,
        "del": words.deletions,
        "ins": words.insertions,
    }


@register("task", "asr")
class ASRTask(Task):
    """CTC character recognisers fine-tuned from each front end -> WER and CER."""

    title = "Speech recognition fine-tuning (CTC characters): WER and CER, greedy and with LM"
    families = ("frontend", "quantizer", "objective", "language", "labeled")
    axes = {"language": ("en", "lv"), "labeled": tuple(LABELED)}
    baseline = {"frontend": "logmel", "quantizer": "-", "objective": "-"}
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

    def config(self, scale: str) -> dict:
        return {
            **scale_config(ASRConfig, SCALE_CONFIGS, scale),
            "ssl": ssl_phoneme.SSLPhonemeTask().config(scale),
            "scale": scale,
        }

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        """Front ends x languages x labeled amounts of ``scale``, narrowed by --methods.

        Labeled amounts named in ``selected`` replace the scale's own (any of LABELED)."""
        selected = dict(selected or {})
        labeled = selected.pop("labeled", None)
        for name in labeled or ():
            if name not in LABELED:
                raise ValueError(f"labeled={name!r} unknown; known: {', '.join(LABELED)}")
        rows = [
            {"frontend": f, "quantizer": q, "objective": o, "language": lang, "labeled": lab}
            for f, q, o in FRONTENDS[scale]
            for lang in ("en", "lv")
            for lab in labeled or LABELED_AXIS[scale][lang]
        ]
        for family, names in selected.items():
            rows = [r for r in rows if r[family] in names or r[family] == "-"]
        return rows

    def baseline_of(self, method):
        if method["frontend"] == "logmel":
            return None
        return {**method, **self.baseline}

    def dataset_card(self, config: dict) -> str:
        return synthetic.card(synthetic.ensure_corpus(config["corpus"]))

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        raw = dict(cell.config)
        ssl_cfg = build_config(ssl_phoneme.SSLConfig, raw.pop("ssl"))
        raw.pop("scale")
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
        train = splits.pop("train")
        chosen, lab_seconds = labeled_subset(train.lengths, LABELED[m["labeled"]], cell.seed)
        texts = [normalize(train.utts[i].transcript, lang) for i in chosen]
        targets = [torch.tensor([index[c] for c in characters(t, lang)]) for t in texts]
        lab_audio = Subset(train.audio, chosen)
        lm = NgramLM(order=config.lm_order).fit(
            [normalize(u.transcript, lang).split() for u in train.utts]
        )  # all train text, labeled or not
        harness.seed_everything(cell.seed)
        backbone, curves = None, {}
        if m["frontend"] == "pretrained":
            backbone, trained = ssl_phoneme.load_or_pretrain(
                m["quantizer"], m["objective"], ssl_cfg, cell.seed, ctx
            )
            if trained:
                curves["pretrain_loss"] = trained["curves"]["pretrain_loss"]
        elif m["frontend"] == "random":
            backbone = Wav2Vec(config_for(ssl_cfg.model_size), "gumbel", "contrastive")
        model = CTCRecognizer(m["frontend"], backbone, len(tokens), ssl_cfg.model_size)
        model = model.to(ctx.device)
        tuned = fine_tune(model, lab_audio, targets, config, cell.seed, ctx)
        curves["finetune_loss"] = tuned["losses"]
        metrics: dict[str, float] = {"labeled_seconds": lab_seconds}
        timing: dict[str, float | None] = {"train_samples_per_s": tuned["samples_per_s"]}
        for name, split in splits.items():
            refs = [normalize(u.transcript, lang) for u in split.utts]
            beam = name != "dev"  # dev is for model selection: greedy only, to save time
            hyp_greedy, hyp_beam, seconds = transcribe(
                model, split.audio, tokens, lm, config, ctx, beam
            )
            g = score(refs, hyp_greedy)
            metrics.update({f"{name}_wer": g["wer"], f"{name}_cer": g["cer"]})
            if beam:
                b = score(refs, hyp_beam)
                metrics.update({f"{name}_wer_lm": b["wer"], f"{name}_cer_lm": b["cer"]})
            if name == "test":
                metrics.update(
                    {
                        "test_substitutions": g["sub"],
                        "test_deletions": g["del"],
                        "test_insertions": g["ins"],
                    }
                )
                audio_s = sum(split.lengths) / SAMPLE_RATE
                timing["decode_rtf_greedy"] = (seconds["net"] + seconds["greedy"]) / audio_s
                timing["decode_rtf_beam"] = (seconds["net"] + seconds["beam"]) / audio_s
                curves["examples"] = [
                    [r, h, hb]
                    for r, h, hb in zip(refs[:3], hyp_greedy[:3], hyp_beam[:3], strict=True)
                ]
        return CellResult(metrics=metrics, curves=curves, timing=timing)

    def figures(self, records: list[Record], fig_dir: Path) -> Iterator[Figure]:
        from bench.report import asr_figures

        yield from asr_figures.draw(records, fig_dir)
