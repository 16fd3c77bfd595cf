"""Settings and helpers shared by the wav2vec 2.0 speed cases.

The quantizer cases are in :mod:`bench.speed.cases_wav2vec_quantizers`, the contrastive loss
and the pre-training step in :mod:`bench.speed.cases_wav2vec`; both use the group, tags and
size labels, the wav2vec 2.0 BASE quantizer shape and masking, and the helpers below.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from bench.speed.case import import_peer

GROUP = "wav2vec 2.0"
TAGS = ("wav2vec2", "ssl")
LABELS = ("tiny", "small", "medium", "large")
GROUPS, ENTRIES = 2, 320  # wav2vec 2.0 BASE quantizer: G groups of V entries
TAU = 2.0  # Gumbel temperature at the start of training (both sides)
MASK_PROB, MASK_LENGTH = 0.065, 10


def _sizes(key: str, *values: Any, **fixed: Any) -> dict[str, dict[str, Any]]:
    return {label: {key: v, **fixed} for label, v in zip(LABELS, values, strict=True)}


def _frames(*shapes: tuple[int, int]) -> dict[str, dict[str, int]]:
    """(batch, steps) per size label; 50 steps are 1 s of audio at 20 ms frames."""
    return {label: {"batch": b, "steps": t} for label, (b, t) in zip(LABELS, shapes, strict=True)}


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Module init from a fixed seed without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _w2v() -> Any:
    """transformers' wav2vec 2.0 module, or PeerMissing."""
    import_peer("transformers")
    return import_peer("transformers.models.wav2vec2.modeling_wav2vec2", "transformers")


def _clear(params: list[torch.Tensor]) -> None:
    for p in params:
        p.grad = None
