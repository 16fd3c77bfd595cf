"""Log-mel features of the embedded corpus's splits (English and Latvian), cached per
process: the speaker and prosody tasks run many cells on the same features. (Here, not in
bench/data, so that the tasks' version hash covers the feature extraction.)"""

from __future__ import annotations

import torch

from bench.data import synthetic
from bench.models.frontends import LogMel

__all__ = ["features"]

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
