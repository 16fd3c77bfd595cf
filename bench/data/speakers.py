"""Synthetic speakers and tone-of-voice (prosody) classes for the espeak corpus.

A speaker is an espeak voice variant (formant and glottal settings from espeak-ng's
voices/!v, e.g. m3, f2, klatt4) with its own pitch and rate offsets. Prosody classes are
SYNTHETIC STAND-INS for emotions: settings of rate, pitch, pitch range and volume that
mimic the acoustic correlates of arousal (fast/high/wide vs slow/low/flat) and of tense,
loud speech. They are not recordings of emotional speech, and a model that separates them
has learnt those four acoustic settings, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.espeak import Voice

# espeak-ng variants that sound like a (synthetic) human speaker; robotic, whispered and
# effect voices (robosoft*, UniRobot, Demonic, croak, whisper, ...) are left out.
VARIANTS = (
    "m1 m2 m3 m4 m5 m6 m7 m8 f1 f2 f3 f4 f5 klatt klatt2 klatt3 klatt4 klatt5 klatt6 "
    "Alex Alicia Andrea Andy Annie Denis Diogo Gene Gene2 Henrique Hugo Jacky Lee Marco "
    "Mario Michael Mike Nguyen Reed Storm adam anika announcer antonio aunty belinda "
    "benjamin boris caleb david ed edward edward2 grandma grandpa gustave ian iven iven2 "
    "iven3 iven4 john linda marcelo max michel miguel mike2 norbert pablo paul pedro "
    "quincy rob robert sandro shelby steph steph2 steph3 travis victor zac"
).split()

BASE_VOICE = {"en": "en-us", "lv": "lv"}


@dataclass(frozen=True)
class ProsodyClass:
    """Multipliers and offsets applied to a speaker's neutral settings."""

    name: str
    rate_factor: float
    pitch_offset: int
    pitch_range: int
    volume: int


PROSODY_CLASSES = (
    ProsodyClass("neutral", 1.00, 0, 50, 100),
    ProsodyClass("high_arousal", 1.25, 18, 80, 130),  # fast, high, wide pitch range
    ProsodyClass("low_arousal", 0.78, -15, 20, 75),  # slow, low, flat
    ProsodyClass("tense", 1.05, 8, 35, 175),  # loud and pressed, narrow range
)
JITTER = {"rate": 0.05, "pitch": 4, "range": 8, "volume": 10}  # per-utterance spread


@dataclass(frozen=True)
class Speaker:
    id: str
    language: str
    variant: str
    pitch: int  # neutral base pitch (espeak 0..100)
    rate: int  # neutral words per minute

    def voice(self, prosody: ProsodyClass, rng: np.random.Generator) -> Voice:
        """espeak settings of one utterance in ``prosody``, with per-utterance jitter."""
        rate = self.rate * prosody.rate_factor * (1 + JITTER["rate"] * rng.uniform(-1, 1))
        pitch = self.pitch + prosody.pitch_offset + JITTER["pitch"] * rng.uniform(-1, 1)
        rng_range = prosody.pitch_range + JITTER["range"] * rng.uniform(-1, 1)
        volume = prosody.volume + JITTER["volume"] * rng.uniform(-1, 1)
        return Voice(
            name=f"{BASE_VOICE[self.language]}+{self.variant}",
            rate=int(np.clip(round(rate), 80, 450)),
            pitch=int(np.clip(round(pitch), 0, 100)),
            pitch_range=int(np.clip(round(rng_range), 0, 100)),
            volume=int(np.clip(round(volume), 0, 200)),
        )


def make_speakers(language: str, count: int, rng: np.random.Generator) -> list[Speaker]:
    """``count`` distinct speakers: variants in a seeded order, each with its own offsets."""
    if language not in BASE_VOICE:
        raise ValueError(f"no espeak voice for language {language!r}; known: {sorted(BASE_VOICE)}")
    order = rng.permutation(len(VARIANTS))
    speakers = []
    for i in range(count):
        variant = VARIANTS[order[i % len(VARIANTS)]]
        speakers.append(
            Speaker(
                id=f"{language}{i:03d}_{variant}",
                language=language,
                variant=variant,
                pitch=int(rng.integers(35, 66)),
                rate=int(rng.integers(150, 196)),
            )
        )
    return speakers
