"""Training-time data augmentations (registered under "augment"), for bench.tasks.augment.

An augmentation is a small object with ``domain`` ("wave": a 16 kHz waveform (S,), or
"spec": a log-mel (T, n_mels)) and ``__call__(x, rng) -> tensor``; all randomness comes
from the numpy Generator passed in, so the same seed gives the same output.

- ``none``: identity (the baseline).
- ``noise``: additive noise (white/pink/brown) at an SNR drawn uniformly from
  [snr_low, snr_high] dB, mixed with bench.data.noise.mix_at_snr (active-speech level).
- ``speed``: speed perturbation by resampling, Ko et al., "Audio augmentation for speech
  recognition" (Interspeech 2015): factor f from (0.9, 1.0, 1.1); the output has
  ceil(S / f) samples and pitch and tempo both scale by f.
- ``specaugment``: frequency and time masking, Park et al., "SpecAugment" (Interspeech
  2019): ``freq_masks`` bands of width ~U[0, F] and ``time_masks`` spans of width
  ~U[0, T] (at most ``max_time_ratio`` of the frames), filled with the utterance mean.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torchaudio

from bench.data.noise import make_noise, mix_at_snr
from bench.registry import register

SAMPLE_RATE = 16000


class Augmentation:
    """Base class: ``domain`` says what ``__call__`` takes and returns."""

    domain: ClassVar[str] = "wave"

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        raise NotImplementedError


@register("augment", "none")
class NoAugment(Augmentation):
    """Identity: the un-augmented baseline."""

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return x


@register("augment", "noise")
class NoiseMix(Augmentation):
    """Add coloured noise at a random SNR (dB, active speech level vs noise power)."""

    def __init__(
        self,
        snr_low: float = 0.0,
        snr_high: float = 20.0,
        kinds: tuple[str, ...] = ("white", "pink", "brown"),
    ) -> None:
        if snr_low > snr_high:
            raise ValueError(f"snr_low {snr_low} > snr_high {snr_high}")
        self.snr_low, self.snr_high, self.kinds = snr_low, snr_high, kinds

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        snr = float(rng.uniform(self.snr_low, self.snr_high))
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        return add_noise(x, snr, kind, rng)


def add_noise(x: torch.Tensor, snr_db: float, kind: str, rng: np.random.Generator):
    """``x`` plus ``kind`` noise at ``snr_db``; a silent ``x`` is returned unchanged."""
    clean = x.numpy().astype(np.float64)
    noise = make_noise(kind, len(clean), rng, SAMPLE_RATE)
    try:
        mix = mix_at_snr(clean, noise, snr_db, sample_rate=SAMPLE_RATE)
    except ValueError:  # silent crop: nothing to mix against
        return x
    return torch.from_numpy(mix.noisy)


@register("augment", "speed")
class SpeedPerturb(Augmentation):
    """Resample by a factor f drawn from ``factors`` (Ko et al. 2015: 0.9, 1.0, 1.1)."""

    def __init__(self, factors: tuple[float, ...] = (0.9, 1.0, 1.1)) -> None:
        if min(factors) <= 0:
            raise ValueError(f"speed factors must be positive, got {factors}")
        self.factors = factors

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return change_speed(x, float(self.factors[int(rng.integers(len(self.factors)))]))


def change_speed(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``x`` ``factor`` times faster: ceil(S / factor) samples, pitch × factor."""
    if factor == 1.0:
        return x
    # reading the signal as if sampled at factor·sr and resampling to sr
    orig = int(round(factor * 100))
    return torchaudio.functional.resample(x, orig_freq=orig, new_freq=100)


@register("augment", "specaugment")
class SpecAugment(Augmentation):
    """Frequency and time masks on a log-mel (T, n_mels) (Park et al. 2019, policy LB-like,
    widths scaled to 40 mels and ~1 s crops)."""

    domain = "spec"

    def __init__(
        self,
        freq_mask_param: int = 8,  # F
        freq_masks: int = 2,  # m_F
        time_mask_param: int = 20,  # T
        time_masks: int = 2,  # m_T
        max_time_ratio: float = 0.2,  # p: a time mask covers at most p·τ frames
    ) -> None:
        self.F, self.mF, self.T, self.mT, self.p = (
            freq_mask_param,
            freq_masks,
            time_mask_param,
            time_masks,
            max_time_ratio,
        )

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        out = x.clone()
        fill = float(x.mean())
        n_frames, n_mels = x.shape
        for _ in range(self.mF):  # f ~ U[0, F], f0 ~ U[0, ν − f)
            f = int(rng.integers(0, min(self.F, n_mels) + 1))
            f0 = int(rng.integers(0, n_mels - f + 1))
            out[:, f0 : f0 + f] = fill
        t_max = min(self.T, int(self.p * n_frames))
        for _ in range(self.mT):  # t ~ U[0, T], t0 ~ U[0, τ − t)
            t = int(rng.integers(0, t_max + 1))
            t0 = int(rng.integers(0, n_frames - t + 1))
            out[t0 : t0 + t, :] = fill
        return out
