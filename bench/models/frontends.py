"""Front ends whose frame features the SSL probe and the ASR recogniser read ("frontend").

Every registered front end makes features: the classic baselines (log-mel filterbank,
MFCC) with torchaudio, and the wav2vec-style network, either at its random initialisation
(``wav2vec_random``) or pre-trained with the row's quantizer and objective (``wav2vec``).
A front end gives the probe its candidate layers (``layers``) and a recogniser its trunk
(``trunk``: what maps waveforms to the Transformer's input, and that Transformer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
import torchaudio
from torch import nn

from bench.context import RunContext
from bench.models.pretraining import (
    PretrainConfig,
    Watch,
    build_network,
    load_or_pretrain,
    network_features,
)
from bench.models.wav2vec import ContextNetwork, Wav2Vec, Wav2VecConfig
from bench.registry import register

Features = dict[str, list[torch.Tensor]]  # layer -> (T, D) features of each utterance


class Frontend:
    """What a front end offers; subclasses fill in the features."""

    requires: ClassVar[tuple[str, ...]] = ()  # context from the task (registry.build)
    frame_ms: ClassVar[float] = 10.0  # frame hop of the features
    network: Wav2Vec | None = None  # the network behind the features (None: fixed DSP)
    pretraining: dict | None = None  # curves and timing of a pre-training run in this cell

    def layers(self, audio: Sequence[np.ndarray]) -> Features:
        """Per candidate layer (the probe picks one), the features of each utterance."""
        raise NotImplementedError

    def trunk(self, config: Wav2VecConfig) -> tuple[nn.Module, nn.Module]:
        """(input, context) of a recogniser: ``input`` maps (B, S) waveforms to (B, T, dim)
        20 ms frames (and counts them: ``input.frames(num_samples)``), ``context`` is the
        Transformer over them."""
        raise NotImplementedError


class SignalFrontend(Frontend):
    """Fixed signal processing, 25 ms windows every 10 ms; a recogniser on it stacks two
    frames into 20 ms, projects them to its width and trains a Transformer from scratch."""

    hop: ClassVar[int] = 160
    dim: int
    registry_name: str

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:  # (S,) -> (T, dim)
        raise NotImplementedError

    def layers(self, audio: Sequence[np.ndarray]) -> Features:
        return {self.registry_name: [self(torch.from_numpy(w)) for w in audio]}

    def trunk(self, config: Wav2VecConfig) -> tuple[nn.Module, nn.Module]:
        return StackedFrames(self, config.dim), ContextNetwork(config)


class StackedFrames(nn.Module):
    """``stack`` consecutive frames of a fixed front end, concatenated and projected."""

    def __init__(self, frontend: SignalFrontend, dim: int, stack: int = 2) -> None:
        super().__init__()
        self.frontend, self.stack = frontend, stack
        self.input = nn.Linear(stack * frontend.dim, dim)

    def frames(self, num_samples: int) -> int:
        return (num_samples // self.frontend.hop + 1) // self.stack

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # (B, S) -> (B, T, dim)
        feats = torch.stack([self.frontend(w) for w in wav])  # (B, T10, D)
        t = feats.shape[1] // self.stack * self.stack
        stacked = feats[:, :t].reshape(len(wav), t // self.stack, self.stack * feats.shape[2])
        return self.input(stacked)


@register("frontend", "logmel")
class LogMel(SignalFrontend):
    """80 log-mel filterbank energies, 25 ms windows every 10 ms (the usual ASR input)."""

    def __init__(self, sample_rate: int = 16000, n_mels: int = 80) -> None:
        self.dim = n_mels
        self.transform = torchaudio.transforms.MelSpectrogram(
            sample_rate, n_fft=400, win_length=400, hop_length=self.hop, n_mels=n_mels
        )

    @torch.no_grad()
    def __call__(self, wav: torch.Tensor) -> torch.Tensor:  # (S,) -> (T, n_mels)
        return torch.log(self.transform(wav) + 1e-6).T


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


def candidate_layers(feats: dict[str, list]) -> list[str]:
    """Probe the encoder output, the middle context layer and the last one."""
    inner = sorted(k for k in feats if k.startswith("layer"))
    middle = [inner[len(inner) // 2]] if inner else []
    return ["encoder", *middle, "context"]


class NetworkInput(nn.Module):
    """The network's frozen feature encoder, then its projection (fine-tuned)."""

    def __init__(self, network: Wav2Vec) -> None:
        super().__init__()
        self.network = network
        network.encoder.requires_grad_(False)  # the feature encoder stays frozen

    def frames(self, num_samples: int) -> int:
        return self.network.encoder.frames(num_samples)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            z = self.network.features(wav)
        return self.network.projection(z)


class NetworkFrontend(Frontend):
    """The wav2vec-style network's frozen representations, 20 ms frames."""

    frame_ms = 20.0
    network: Wav2Vec
    device: torch.device

    def layers(self, audio: Sequence[np.ndarray]) -> Features:
        feats = network_features(self.network, audio, self.device)
        return {name: feats[name] for name in candidate_layers(feats)}

    def trunk(self, config: Wav2VecConfig) -> tuple[nn.Module, nn.Module]:
        return NetworkInput(self.network), self.network.context


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
    pre-trained it, unless this cell ``watch``es the pre-training (then it always runs)."""

    requires = ("quantizer", "objective", "pretraining", "ctx", "watch")

    def __init__(
        self,
        quantizer: str | None,
        objective: str,
        pretraining: PretrainConfig,
        ctx: RunContext,
        watch: Watch | None = None,
    ) -> None:
        self.device = ctx.device
        self.network, self.pretraining = load_or_pretrain(
            quantizer, objective, pretraining, ctx, watch
        )
