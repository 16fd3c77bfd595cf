"""The splits a speech recogniser trains and is scored on: the embedded corpus's train /
valid (as dev) / test of one language, or LibriSpeech's subsets, with their audio in memory
or read from disk on access; and the seeded labeled subset of a train split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.data import synthetic
from bench.data.audio import read_audio
from bench.data.items import Utterance
from bench.data.librispeech import load_librispeech

SAMPLE_RATE = 16000


@dataclass
class Split:
    """Utterances of one split with their audio (arrays, or read from disk on access)."""

    utts: list[Utterance]
    audio: Sequence[np.ndarray]
    lengths: list[int]  # samples per utterance, known without reading the audio

    @classmethod
    def in_memory(cls, utts: Sequence[Utterance], audio: Sequence[np.ndarray]) -> Split:
        return cls(list(utts), audio, [len(a) for a in audio])


class LazyAudio(Sequence[np.ndarray]):
    """Audio of real-corpus utterances, read on access so a 100 h subset fits in memory."""

    def __init__(self, utts: Sequence[Utterance]) -> None:
        self.paths = [u.path for u in utts]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        return read_audio(self.paths[i], expected_sample_rate=SAMPLE_RATE)


class Subset(Sequence[np.ndarray]):
    """The items ``indices`` of a sequence, without reading or copying them."""

    def __init__(self, base: Sequence[np.ndarray], indices: list[int]) -> None:
        self.base, self.indices = base, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.base[self.indices[i]]


def librispeech_splits(root: str | Path) -> dict[str, Split]:
    """LibriSpeech subsets as the task's splits: train-* -> train, dev-clean -> dev,
    test-clean -> test, test-other -> test_other (missing dev/test subsets are skipped)."""
    items = load_librispeech(root)
    by_subset: dict[str, list[Utterance]] = {}
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


def labeled_subset(
    lengths: list[int], seconds: float, rng: np.random.Generator
) -> tuple[list[int], float]:
    """Indices of a random subset (order drawn from ``rng``) holding about ``seconds``."""
    order = rng.permutation(len(lengths))
    chosen, total = [], 0.0
    for i in order:
        if total >= seconds:
            break
        chosen.append(int(i))
        total += lengths[i] / SAMPLE_RATE
    return chosen, total
