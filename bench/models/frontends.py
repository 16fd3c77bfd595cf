"""Front ends whose frame features the SSL and ASR probes read, registered as "frontend".

The classic baselines (log-mel filterbank, MFCC) are computed with torchaudio; "pretrained"
and "random" name the wav2vec-style network after self-supervised pre-training or with its
random initialisation (the probe then reads its frozen representations).
"""

from __future__ import annotations

import torch
import torchaudio

from bench.registry import register


@register("frontend", "logmel")
class LogMel:
    """80 log-mel filterbank energies, 25 ms windows every 10 ms (the usual ASR input)."""

    def __init__(self, sample_rate: int = 16000, n_mels: int = 80) -> None:
        self.transform = torchaudio.transforms.MelSpectrogram(
            sample_rate, n_fft=400, win_length=400, hop_length=160, n_mels=n_mels
        )

    @torch.no_grad()
    def __call__(self, wav: torch.Tensor) -> torch.Tensor:  # (S,) -> (T, n_mels)
        return torch.log(self.transform(wav) + 1e-6).T


@register("frontend", "mfcc")
class MFCC:
    """13 MFCCs with deltas and delta-deltas (39 dims), 25 ms windows every 10 ms."""

    def __init__(self, sample_rate: int = 16000, n_mfcc: int = 13) -> None:
        self.transform = torchaudio.transforms.MFCC(
            sample_rate,
            n_mfcc=n_mfcc,
            melkwargs={"n_fft": 400, "win_length": 400, "hop_length": 160, "n_mels": 40},
        )

    @torch.no_grad()
    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        c = self.transform(wav)  # (n_mfcc, T)
        d1 = torchaudio.functional.compute_deltas(c)
        d2 = torchaudio.functional.compute_deltas(d1)
        return torch.cat([c, d1, d2]).T


@register("frontend", "pretrained")
class Pretrained:
    """The wav2vec-style network after self-supervised pre-training (frozen for probing)."""


@register("frontend", "random")
class RandomInit:
    """The same network with its random initialisation, frozen: the no-learning baseline."""
