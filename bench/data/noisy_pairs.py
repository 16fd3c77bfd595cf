"""(noisy, clean) audio pairs for speech enhancement: the embedded corpus's mixtures or
VoiceBank-DEMAND, a fixed balanced test subset, random training crops, and the test
utterance shown in the spectrogram panels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.data import synthetic
from bench.data.items import Utterance
from bench.data.voicebank import load_voicebank


@dataclass
class PairSet:
    """(noisy, clean) audio pairs of one split, with what is known of each mixture."""

    utts: list[Utterance]
    noisy: list[np.ndarray]
    clean: list[np.ndarray]

    def subset(self, indices: list[int]) -> PairSet:
        return PairSet(
            [self.utts[i] for i in indices],
            [self.noisy[i] for i in indices],
            [self.clean[i] for i in indices],
        )


_PAIRS: dict[tuple, PairSet] = {}


def load_pairs(source: str, split: str) -> PairSet:
    """Pairs of ``split`` (train / test) from the embedded corpus scale ``source`` or from
    ``voicebank=PATH``; cached per process."""
    if source.startswith("voicebank="):
        key: tuple = (source, split)
        if key not in _PAIRS:
            utts = load_voicebank(source.removeprefix("voicebank="), splits=split)
            _PAIRS[key] = PairSet(utts, [u.load() for u in utts], [u.load_clean() for u in utts])
        return _PAIRS[key]
    root = synthetic.ensure_corpus(source)
    key = (root, split)
    if key not in _PAIRS:
        utts = [u for u in synthetic.load_manifest(root, "mixtures.jsonl") if u.split == split]
        _PAIRS[key] = PairSet(utts, [u.load() for u in utts], [u.load_clean() for u in utts])
    return _PAIRS[key]


def test_indices(utts: list[Utterance], n: int) -> list[int]:
    """``n`` test utterances (0: all), round-robin over noise types after a fixed shuffle:
    the same set for every cell and seed, so paired comparisons see the same utterances."""
    if n == 0 or n >= len(utts):
        return list(range(len(utts)))
    order = np.random.default_rng(0).permutation(len(utts))  # fixed: data, not the cell seed
    groups: dict[str, list[int]] = {}
    for i in order:
        groups.setdefault(str(utts[i].noise_type), []).append(int(i))
    queues = [groups[k] for k in sorted(groups)]
    chosen: list[int] = []
    while len(chosen) < n:
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop(0))
    return sorted(chosen)


def crop_batch(
    pairs: PairSet, rng: np.random.Generator, batch: int, crop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random (noisy, clean) crops of ``crop`` samples, zero-padded when shorter."""
    noisy = np.zeros((batch, crop), np.float32)
    clean = np.zeros((batch, crop), np.float32)
    for row, i in enumerate(rng.integers(len(pairs.noisy), size=batch)):
        n, c = pairs.noisy[i], pairs.clean[i]
        start = int(rng.integers(max(1, len(n) - crop + 1)))
        seg = slice(start, start + crop)
        noisy[row, : len(n[seg])] = n[seg]
        clean[row, : len(c[seg])] = c[seg]
    return torch.from_numpy(noisy), torch.from_numpy(clean)


def example_index(utts: list[Utterance]) -> int:
    """The utterance shown in the spectrogram panels: a 5 dB babble or pink mixture when
    there is one (speech-like and broadband noise show most), else the first."""
    for kind in ("babble", "pink", "white"):
        for i, u in enumerate(utts):
            if u.noise_type == kind and u.snr_db == 5.0:
                return i
    return 0
