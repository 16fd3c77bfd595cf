"""Speed cases for the scoring metrics: calibration, error rates and PESQ against their peers.

Each pair gets the same inputs in the form a user holds them (probabilities and labels;
reference and hypothesis strings; waveforms) and returns comparable outputs, so every row
also checks that ours and the peer agree.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from bench.metrics.asr import token_error_rate
from bench.metrics.calibration import ece, selective_auroc
from bench.metrics.enhancement import default_workers, get_pool, pesq_scores
from bench.speed.case import SIZES, SpeedCase, Workload, close, import_peer, register_case

GROUP = "metrics"
CLASSES = 10
BINS = 15


def _predictions(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax outputs of an over-confident classifier that is right about 70% of the time."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    logits = torch.randn(n, CLASSES, generator=g) * 2.0
    right = torch.rand(n, generator=g) < 0.7
    logits[right, labels[right]] += 3.0
    return logits.softmax(-1).to(device), labels.to(device)


def build_ece(device: torch.device, n: int) -> Workload:
    tm = import_peer("torchmetrics", "torchmetrics")
    probs, labels = _predictions(n, device)
    return Workload(
        ours=lambda: ece(probs, labels, n_bins=BINS),
        peer=lambda: tm.functional.classification.multiclass_calibration_error(
            probs, labels, num_classes=CLASSES, n_bins=BINS, norm="l1"
        ),
        shape=f"N={n:,} C={CLASSES}",
        items=n,
        agree=close(1e-4),
    )


def build_auroc(device: torch.device, n: int) -> Workload:
    tm = import_peer("torchmetrics", "torchmetrics")
    probs, labels = _predictions(n, device)

    def peer() -> torch.Tensor:
        conf, pred = probs.max(-1)
        return tm.functional.classification.binary_auroc(conf, (pred == labels).long())

    return Workload(
        ours=lambda: selective_auroc(probs, labels),
        peer=peer,
        shape=f"N={n:,} C={CLASSES}",
        items=n,
        agree=close(1e-4),
    )


def _transcripts(n: int, vocab: int, length: int, prefix: str) -> tuple[list[str], list[str]]:
    """Reference and hypothesis strings with ~15% substitutions, deletions and insertions."""
    rng = random.Random(0)
    words = [f"{prefix}{i}" for i in range(vocab)]
    refs, hyps = [], []
    for _ in range(n):
        ref = [rng.choice(words) for _ in range(rng.randint(length // 2, 3 * length // 2))]
        hyp = []
        for token in ref:
            u = rng.random()
            if u < 0.08:
                hyp.append(rng.choice(words))
            elif u < 0.12:
                continue
            else:
                hyp.append(token)
            if rng.random() < 0.03:
                hyp.append(rng.choice(words))
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    return refs, hyps


def build_error_rate(device: torch.device, n: int, vocab: int, length: int) -> Workload:
    jiwer = import_peer("jiwer", "jiwer")
    refs, hyps = _transcripts(n, vocab, length, "w" if vocab > 100 else "p")
    return Workload(
        ours=lambda: token_error_rate([r.split() for r in refs], [h.split() for h in hyps]).rate,
        peer=lambda: jiwer.wer(refs, hyps),
        shape=f"{n:,} utterances, ~{length} tokens, vocab {vocab}",
        items=n,
        agree=close(1e-9),
    )


def _speechlike(n: int, seconds: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Voiced harmonic bursts plus white noise at ~15 dB: PESQ finds speech activity in them."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    clean = np.empty((n, t.size), np.float32)
    for k in range(n):
        f0 = 100 + 7 * (k % 20) + 20 * np.sin(2 * np.pi * 0.9 * t)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        voiced = sum(np.sin(j * phase) / j for j in range(1, 10)) * (np.sin(2 * np.pi * 2 * t) > 0)
        clean[k] = 0.3 * voiced / np.abs(voiced).max()
    noisy = clean + 0.03 * rng.standard_normal(clean.shape).astype(np.float32)
    return clean, noisy


def build_pesq(device: torch.device, n: int, seconds: float = 1.0) -> Workload:
    tm = import_peer("torchmetrics", "torchmetrics")
    sr, workers = 16000, default_workers()
    clean, noisy = _speechlike(n, seconds, sr)
    clean_t, noisy_t = torch.from_numpy(clean), torch.from_numpy(noisy)
    get_pool(workers)  # a run makes its pool once and reuses it; start it before the clock

    def ours() -> torch.Tensor:
        return torch.tensor(pesq_scores(list(clean), list(noisy), sr, "wb", workers))

    def peer() -> torch.Tensor:
        return tm.functional.audio.perceptual_evaluation_speech_quality(
            noisy_t, clean_t, sr, "wb", n_processes=workers
        )

    return Workload(
        ours=ours,
        peer=peer,
        shape=f"{n} utterances of {seconds:g} s, PESQ-WB, {workers} processes",
        items=n,
        agree=close(1e-5),
    )


PREDICTIONS = {
    label: {"n": n} for label, n in zip(SIZES, (10_000, 100_000, 1_000_000, 4_000_000), strict=True)
}


def _utterances(vocab: int, length: int) -> dict[str, dict[str, int]]:
    counts = (100, 1000, 10_000, 50_000)
    return {
        s: {"n": n, "vocab": vocab, "length": length} for s, n in zip(SIZES, counts, strict=True)
    }


register_case(
    SpeedCase(
        name="ECE (15 bins)",
        peer="torchmetrics multiclass_calibration_error",
        sizes=PREDICTIONS,
        build=build_ece,
        group=GROUP,
    )
)
register_case(
    SpeedCase(
        name="selective AUROC",
        peer="torchmetrics binary_auroc",
        sizes=PREDICTIONS,
        build=build_auroc,
        group=GROUP,
    )
)
register_case(
    SpeedCase(
        name="WER",
        peer="jiwer.wer",
        sizes=_utterances(vocab=2000, length=20),
        build=build_error_rate,
        group=GROUP,
    )
)
register_case(
    SpeedCase(
        name="PER",
        peer="jiwer.wer on phone strings",
        sizes=_utterances(vocab=39, length=40),
        build=build_error_rate,
        group=GROUP,
    )
)
register_case(
    SpeedCase(
        name="PESQ",
        peer="torchmetrics perceptual_evaluation_speech_quality",
        sizes={"tiny": {"n": 10}, "small": {"n": 50}, "medium": {"n": 200}, "large": {"n": 1000}},
        build=build_pesq,
        group=GROUP,
    )
)
