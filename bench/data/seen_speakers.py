"""The seen-speaker setting of the prosody and augmentation tasks: every utterance of the
embedded corpus (all splits, English and Latvian) pooled, and each speaker's utterances
cut 60/20/20 into train/valid/test by a fixed seeded permutation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bench.data import synthetic

__all__ = ["SPLIT_FRACTIONS", "load_audio", "seen_speaker_splits"]

SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # of each speaker's utterances: train / valid / test


def seen_speaker_splits(utts: Sequence[Any], seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of train/valid/test: each speaker's utterances permuted (seeded) and cut
    60/20/20, so every speaker is in every part. The seed is data (fixed), not a cell's."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    speakers = np.array([u.speaker for u in utts])
    for spk in sorted(set(speakers)):
        idx = rng.permutation(np.flatnonzero(speakers == spk))
        n_valid = max(1, round(len(idx) * SPLIT_FRACTIONS[1]))
        n_test = max(1, round(len(idx) * SPLIT_FRACTIONS[2]))
        cut = len(idx) - n_valid - n_test
        parts["train"] += idx[:cut].tolist()
        parts["valid"] += idx[cut : cut + n_valid].tolist()
        parts["test"] += idx[cut + n_valid :].tolist()
    return {k: np.array(v) for k, v in parts.items()}


def load_audio(corpus: str) -> tuple[list, list[torch.Tensor]]:
    """All utterances of the corpus (every split, English and Latvian) and their audio."""
    utts, audio = [], []
    for split in synthetic.SPLITS:
        for language in ("en", "lv"):
            us, au = synthetic.load_split(corpus, split, language)
            utts += us
            audio += [torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in au]
    return utts, audio
