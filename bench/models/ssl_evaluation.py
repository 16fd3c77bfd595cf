"""How the SSL task scores a front end: fine-tuned phone recognition (the headline), the
frozen probe (secondary), and the codes a quantizer makes.

- :func:`finetune_items`: the whole network fine-tuned with a CTC phone head on a labeled
  subset (bench/models/ctc_recognizer.py), greedy-decoded; edits per dev/test utterance.
- :func:`probe_items`: SUPERB's protocol on frozen features (Yang et al. 2021): a learned
  softmax-weighted sum of the layers into a linear CTC probe over a short window, every
  front end at 20 ms frames, trained from ``starts`` seeded starts whose edits are averaged
  per utterance (one start's luck is not a result).
- :func:`code_stats`: perplexity, usage, adjacent-frame agreement and phone information of
  the test frames' codes (bench/metrics/codes.py).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bench.context import RunContext
from bench.data.items import Utterance
from bench.metrics.asr import edit_counts
from bench.metrics.codes import code_diagnostics, frame_labels
from bench.models.ctc_probe import ProbeConfig, decode, train_probe
from bench.models.ctc_recognizer import (
    CTCRecognizer,
    FinetuneConfig,
    fine_tune,
    greedy_tokens,
    log_probs_of,
)
from bench.models.wav2vec import Wav2Vec
from bench.training import TrainResult

Items = dict[str, dict[str, np.ndarray]]
HOP = 320  # samples per 20 ms frame


@dataclass
class Split:
    utts: list[Utterance]
    audio: Sequence[np.ndarray]


def phone_vocab(utts: Sequence[Utterance]) -> list[str]:
    return sorted({p for u in utts for p in u.phonemes or ()})


def _edit_items(split: Split, hyps: list[list[str]], prefix: str = "") -> dict[str, np.ndarray]:
    refs = [list(u.phonemes or ()) for u in split.utts]
    edits = [sum(edit_counts(r, h)) for r, h in zip(refs, hyps, strict=True)]
    return {
        "item_id": np.array([u.id for u in split.utts]),
        f"{prefix}edits": np.array(edits, dtype=np.float64),
        "ref_len": np.array([len(r) for r in refs], dtype=np.int64),
    }


def finetune_items(
    network: Wav2Vec,
    labeled: Split,
    evaluated: dict[str, Split],
    vocab: list[str],
    config: FinetuneConfig,
    ctx: RunContext,
) -> tuple[Items, TrainResult]:
    """Fine-tune a copy of ``network`` on ``labeled``; greedy edits per evaluated utterance."""
    index = {p: i + 1 for i, p in enumerate(vocab)}
    targets = [torch.tensor([index[p] for p in u.phonemes or ()]) for u in labeled.utts]
    model = CTCRecognizer(copy.deepcopy(network), len(vocab)).to(ctx.device)
    model.network.requires_grad_(True)
    trained = fine_tune(model, labeled.audio, targets, config, ctx, desc="fine-tune phones")
    items = {
        name: _edit_items(
            split, [greedy_tokens(log_probs_of(model, w, ctx.device), vocab) for w in split.audio]
        )
        for name, split in evaluated.items()
    }
    return items, trained


def probe_items(
    feats: dict[str, list[torch.Tensor]],
    splits: dict[str, Split],
    vocab: list[str],
    config: ProbeConfig,
    starts: int,
    seed: int,
) -> tuple[Items, list[float]]:
    """Train the probe on ``feats["train"]`` from ``starts`` seeded starts; per dev/test
    utterance the edits averaged over the starts (items "probe_dev", "probe_test"), and the
    mean learned layer weights."""
    targets = [list(u.phonemes or ()) for u in splits["train"].utts]
    hyps: dict[str, list[list[list[str]]]] = {"dev": [], "test": []}
    weights = []
    for start in range(starts):
        generator = torch.Generator().manual_seed(1_000_003 * seed + start)
        probe = train_probe(feats["train"], targets, vocab, config, generator)
        weights.append(probe.layer_weights())
        for name in hyps:
            hyps[name].append(decode(probe, feats[name]))
    items: Items = {}
    for name, runs in hyps.items():
        per_start = [_edit_items(splits[name], h) for h in runs]
        first = per_start[0]
        first["edits"] = np.mean([p["edits"] for p in per_start], axis=0)
        items[f"probe_{name}"] = first
    return items, torch.stack(weights).mean(0).tolist()


@torch.no_grad()
def code_stats(
    network: Wav2Vec, split: Split, device: torch.device
) -> tuple[dict[str, float], list[float]] | None:
    """Diagnostics of the quantizer's codes on ``split`` (eval mode) and the code counts
    (None: the network has no codebook)."""
    quantizer = network.quantizer
    if quantizer is None or quantizer.num_entries < 1:
        return None
    network.eval()
    codes, phones = [], []
    for utt, wav in zip(split.utts, split.audio, strict=True):
        c = network.codes(torch.from_numpy(wav).unsqueeze(0).to(device))[0].cpu().numpy()
        codes.append(c)
        if utt.alignment is not None:
            offset = network.encoder.frame_centre
            phones.append(frame_labels(utt.alignment, len(c), HOP, offset))
    labelled = phones if len(phones) == len(codes) else None
    stats = code_diagnostics(codes, labelled, quantizer.num_entries)
    stacked = np.concatenate(codes)
    counts = [
        float(c)
        for g in range(stacked.shape[1])
        for c in np.bincount(stacked[:, g], minlength=quantizer.num_entries)
    ]
    return stats, counts
