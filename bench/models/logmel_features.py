"""Input features of the embedded corpus's splits (English and Latvian) for the speaker and
prosody tasks: log-mel, cached per process (the tasks run many cells on the same features),
or an hf upstream's hidden states (bench.models.hf_upstream, cached per utterance). (Here,
not in bench/data, so that the tasks' version hash covers the feature extraction.)"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench.context import RunContext
from bench.data import synthetic
from bench.data.noisy_pairs import load_pairs
from bench.models.frontends import LogMel
from bench.models.hf_upstream import HFUpstream, WeightedSumEncoder, flatten_layers
from bench.models.speaker_encoder import Encoder

__all__ = ["CONDITIONS", "FRONTENDS", "InputFeatures", "features", "layer_weights", "split_audio"]

FRONTENDS = ("logmel", "hf")  # the front ends these tasks read

_FEATURES: dict[tuple, tuple[list, list[torch.Tensor]]] = {}


CONDITIONS = ("clean", "noisy")  # noisy: the corpus's mixture of each utterance


def split_audio(
    corpus: str, split: str, condition: str = "clean", seconds: float = 0.0
) -> tuple[list, list[np.ndarray]]:
    """(utterances, waveforms) of one split, English then Latvian. ``condition`` "noisy"
    reads each utterance's noisy mixture (six noise types, babble included, at -5..15 dB
    SNR); ``seconds`` > 0 keeps the middle ``seconds`` of each (shorter ones whole)."""
    if condition not in CONDITIONS:
        raise ValueError(f"test condition {condition!r}: use one of {', '.join(CONDITIONS)}")
    utts: list = []
    audio: list[np.ndarray] = []
    if condition == "clean":
        for language in ("en", "lv"):
            us, au = synthetic.load_split(corpus, split, language)
            utts, audio = utts + us, audio + au
    else:
        pairs = load_pairs(corpus, split)
        order = sorted(range(len(pairs.utts)), key=lambda i: pairs.utts[i].language != "en")
        utts, audio = [pairs.utts[i] for i in order], [pairs.noisy[i] for i in order]
    if seconds > 0:
        audio = [middle(a, int(seconds * synthetic.SAMPLE_RATE)) for a in audio]
    return utts, audio


def middle(x: np.ndarray, n: int) -> np.ndarray:
    """The middle ``n`` samples of ``x`` (all of it when shorter)."""
    start = max(0, (len(x) - n) // 2)
    return x[start : start + n]


def features(
    corpus: str, split: str, n_mels: int, condition: str = "clean", seconds: float = 0.0
) -> tuple[list, list[torch.Tensor]]:
    """(utterances, log-mel (T, n_mels) tensors) of one split (see ``split_audio``)."""
    key = (synthetic.ensure_corpus(corpus), split, n_mels, condition, seconds)
    if key not in _FEATURES:
        logmel = LogMel(n_mels=n_mels)
        utts, audio = split_audio(corpus, split, condition, seconds)
        _FEATURES[key] = (utts, [logmel(torch.from_numpy(a)) for a in audio])
    return _FEATURES[key]


class InputFeatures:
    """The row's front end as the encoder's input: ``logmel`` (n_mels log-mel energies per
    10 ms) or ``hf`` (every hidden layer of the upstream, (T, L * D) per utterance, which the
    encoder sums with learned weights)."""

    def __init__(self, frontend: str, n_mels: int, upstream: str, ctx: RunContext) -> None:
        if frontend not in FRONTENDS:
            raise ValueError(f"front end {frontend!r}: this task reads {' or '.join(FRONTENDS)}")
        self.n_mels = n_mels
        self.upstream = HFUpstream(upstream, ctx) if frontend == "hf" else None

    def split(
        self, corpus: str, split: str, condition: str = "clean", seconds: float = 0.0
    ) -> tuple[list, list[torch.Tensor]]:
        """(utterances, features) of one split, English then Latvian (see ``split_audio``)."""
        if self.upstream is None:
            return features(corpus, split, self.n_mels, condition, seconds)
        utts, audio = split_audio(corpus, split, condition, seconds)
        return utts, [flatten_layers(s) for s in self.upstream.hidden_states(audio)]

    def encoder(self, channels: int, embedding_dim: int) -> nn.Module:
        """A fresh encoder for these features."""
        if self.upstream is None:
            return Encoder(self.n_mels, channels, embedding_dim)
        up = self.upstream
        return WeightedSumEncoder(up.layers, up.dim, channels, embedding_dim)


def layer_weights(model: nn.Module) -> list[float] | None:
    """The learned layer weights of an encoder over an hf upstream (None for log-mel)."""
    featurize = getattr(model, "featurize", None)
    return None if featurize is None else featurize.layer_weights()
