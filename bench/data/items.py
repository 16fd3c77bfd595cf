"""The item every corpus yields, synthetic or real: one utterance and its labels.

Audio is loaded on demand (``Utterance.load()``) so a manifest of a large corpus stays
small; labels that a corpus does not have are None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.data.audio import read_audio


@dataclass(frozen=True)
class PhoneSegment:
    """One phoneme of an alignment, in samples at the utterance's sample rate: [start, end)."""

    phone: str
    start: int
    end: int


@dataclass(frozen=True)
class Utterance:
    """One utterance: where its audio is, and what is known about it."""

    id: str
    path: Path  # the audio (the noisy mixture for enhancement pairs)
    speaker: str
    split: str  # train / valid / test (or a corpus's own split name)
    sample_rate: int = 16000
    language: str = "en"
    transcript: str | None = None  # words, as the corpus writes them
    phonemes: tuple[str, ...] | None = None  # in the corpus's phoneme inventory
    alignment: tuple[PhoneSegment, ...] | None = None
    prosody: str | None = None  # tone-of-voice class (synthetic corpus only)
    clean_path: Path | None = None  # the clean reference, for enhancement pairs
    noise_type: str | None = None
    snr_db: float | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def load(self) -> np.ndarray:
        """Audio as float32 mono in [-1, 1] at ``sample_rate``; errors name the file."""
        return read_audio(self.path, self.sample_rate)

    def load_clean(self) -> np.ndarray:
        if self.clean_path is None:
            raise ValueError(f"utterance {self.id} has no clean reference")
        return read_audio(self.clean_path, self.sample_rate)
