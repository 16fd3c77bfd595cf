"""Input features of the embedded corpus's splits (English and Latvian) for the speaker and
prosody tasks: log-mel, cached per process (the tasks run many cells on the same features),
or an hf upstream's hidden states (bench.models.hf_upstream, cached per utterance). (Here,
not in bench/data, so that the tasks' version hash covers the feature extraction.)"""

from __future__ import annotations

import torch
from torch import nn

from bench.context import RunContext
from bench.data import synthetic
from bench.models.frontends import LogMel
from bench.models.hf_upstream import HFUpstream, WeightedSumEncoder, flatten_layers
from bench.models.speaker_encoder import Encoder

__all__ = ["FRONTENDS", "InputFeatures", "features", "layer_weights"]

FRONTENDS = ("logmel", "hf")  # the front ends these tasks read

_FEATURES: dict[tuple, tuple[list, list[torch.Tensor]]] = {}


def features(corpus: str, split: str, n_mels: int) -> tuple[list, list[torch.Tensor]]:
    """(utterances, log-mel (T, n_mels) tensors) of one split, English then Latvian."""
    key = (synthetic.ensure_corpus(corpus), split, n_mels)
    if key not in _FEATURES:
        logmel = LogMel(n_mels=n_mels)
        utts, feats = [], []
        for language in ("en", "lv"):
            us, audio = synthetic.load_split(corpus, split, language)
            utts += us
            feats += [logmel(torch.from_numpy(a)) for a in audio]
        _FEATURES[key] = (utts, feats)
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

    def split(self, corpus: str, split: str) -> tuple[list, list[torch.Tensor]]:
        """(utterances, features) of one split, English then Latvian."""
        if self.upstream is None:
            return features(corpus, split, self.n_mels)
        utts, feats = [], []
        for language in ("en", "lv"):
            us, audio = synthetic.load_split(corpus, split, language)
            utts += us
            feats += [flatten_layers(s) for s in self.upstream.hidden_states(audio)]
        return utts, feats

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
