"""Front ends whose features the SSL probe reads and whose network a recogniser fine-tunes
("frontend").

- ``logmel``, ``mfcc``: fixed signal processing (torchaudio), 25 ms windows every 10 ms,
  two frames stacked into 20 ms for the probe, so every front end is probed at the same
  frame rate as the networks.
- ``wav2vec_random``: the wav2vec-style network at its random initialisation, the
  no-learning baseline of the pre-trained rows (same architecture, same seed: the same
  initial weights every pre-trained network of that seed started from).
- ``wav2vec``: the network pre-trained with the row's quantizer and objective.

For fine-tuning every front end offers a network (``network``): the log-mel front end
offers the log-mel network at its random initialisation (a Transformer trained from
scratch on log-mel), MFCC none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
import torchaudio

from bench.context import RunContext
from bench.models.pretraining import (
    PretrainConfig,
    build_network,
    load_or_pretrain,
    network_features,
)
from bench.models.wav2vec import Wav2Vec
from bench.models.wav2vec_blocks import LogMel as LogMelTransform
from bench.registry import register

PROBE_FRAME_MS = 20.0  # every front end is probed at 20 ms frames


class Frontend:
    """What a front end offers; subclasses fill in the features."""

    requires: ClassVar[tuple[str, ...]] = ()  # context from the task (registry.build)
    network: Wav2Vec | None = None  # the network to fine-tune (None: fixed DSP only)
    pretraining: dict | None = None  # curves and timing of a pre-training run in this cell

    def probe_features(self, audio: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Per utterance, (T, D) features at 20 ms, or (L, T, D) for L layers to weigh."""
        raise NotImplementedError


class SignalFrontend(Frontend):
    """Fixed signal processing, 25 ms windows every 10 ms."""

    hop: ClassVar[int] = 160
    dim: int

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:  # (S,) -> (T, dim)
        raise NotImplementedError

    def probe_features(self, audio: Sequence[np.ndarray]) -> list[torch.Tensor]:
        return [stack_frames(self(torch.from_numpy(w))) for w in audio]


def stack_frames(feats: torch.Tensor, stack: int = 2) -> torch.Tensor:
    """(T, D) 10 ms frames -> (T // stack, stack * D): consecutive frames concatenated."""
    t = feats.shape[0] // stack * stack
    return feats[:t].reshape(t // stack, stack * feats.shape[1])


@register("frontend", "logmel")
class LogMel(SignalFrontend):
    """80 log-mel filterbank energies, 25 ms windows every 10 ms (the usual ASR input).

    With ``pretraining`` and ``ctx`` it also offers the log-mel network, randomly
    initialised, to fine-tune (the recogniser trained from scratch on log-mel)."""

    requires = ("pretraining", "ctx")

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 80,
        pretraining: PretrainConfig | None = None,
        ctx: RunContext | None = None,
    ) -> None:
        if sample_rate != 16000:
            raise ValueError(f"log-mel front end runs at 16 kHz, not {sample_rate}")
        self.dim = n_mels
        self.transform = LogMelTransform(n_mels)
        if pretraining is not None and ctx is not None:
            config = PretrainConfig(**{**vars(pretraining), "stem": "logmel"})
            self.network = build_network("gumbel", "contrastive", config, ctx)

    @torch.no_grad()
    def __call__(self, wav: torch.Tensor) -> torch.Tensor:  # (S,) -> (T, n_mels)
        return self.transform(wav)


@register("frontend", "mfcc")
class MFCC(SignalFrontend):
    """13 MFCCs with deltas and delta-deltas (39 dims), 25 ms windows every 10 ms."""

    def __init__(self, sample_rate: int = 16000, n_mfcc: int = 13) -> None:
        self.dim = 3 * n_mfcc
        self.transform = torchaudio.transforms.MFCC(
            sample_rate,
            n_mfcc=n_mfcc,
            melkwargs={"n_fft": 400, "win_length": 400, "hop_length": self.hop, "n_mels": 40},
        )

    @torch.no_grad()
    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        c = self.transform(wav)  # (n_mfcc, T)
        d1 = torchaudio.functional.compute_deltas(c)
        d2 = torchaudio.functional.compute_deltas(d1)
        return torch.cat([c, d1, d2]).T


class NetworkFrontend(Frontend):
    """The wav2vec-style network's frozen representations, 20 ms frames: the projected
    input and every block's output, stacked (L, T, dim) for the probe's weighted sum."""

    network: Wav2Vec
    device: torch.device

    def probe_features(self, audio: Sequence[np.ndarray]) -> list[torch.Tensor]:
        feats = network_features(self.network, audio, self.device)
        names = [k for k in feats if k != "stem"]  # the stem has another width
        return [torch.stack([feats[k][i] for k in names]) for i in range(len(audio))]


@register("frontend", "wav2vec_random")
class RandomWav2Vec(NetworkFrontend):
    """The wav2vec 2.0 network (Gumbel quantizer, contrastive objective) at its random
    initialisation: the no-learning baseline of the pre-trained rows."""

    requires = ("pretraining", "ctx")

    def __init__(self, pretraining: PretrainConfig, ctx: RunContext) -> None:
        self.device = ctx.device
        self.network = build_network("gumbel", "contrastive", pretraining, ctx)


@register("frontend", "wav2vec")
class PretrainedWav2Vec(NetworkFrontend):
    """The network pre-trained with the row's ``quantizer`` (None: the objective's own
    teacher makes the targets) and ``objective``; loaded when an earlier cell of the run
    pre-trained it."""

    requires = ("quantizer", "objective", "pretraining", "ctx")

    def __init__(
        self,
        quantizer: str | None,
        objective: str,
        pretraining: PretrainConfig,
        ctx: RunContext,
    ) -> None:
        self.device = ctx.device
        self.network, self.pretraining = load_or_pretrain(quantizer, objective, pretraining, ctx)
