"""Batches for metric learning: class indices, P×K batches and random crops."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["class_indices", "crops", "sample_batch"]


def class_indices(names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Each name's index into the sorted class names, and those names."""
    classes = sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[n] for n in names]), classes


def sample_batch(labels: np.ndarray, p: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a P×K batch: P classes at random, K items of each (with replacement only
    when a class has fewer than K)."""
    classes = np.unique(labels)
    chosen = rng.choice(classes, size=min(p, len(classes)), replace=False)
    out = []
    for c in chosen:
        members = np.flatnonzero(labels == c)
        out.append(rng.choice(members, size=k, replace=len(members) < k))
    return np.concatenate(out)


def crops(
    feats: Sequence[torch.Tensor],
    idx: Sequence[int] | np.ndarray,
    frames: int,
    rng: np.random.Generator,
) -> torch.Tensor:
    """(B, frames, n_mels) random crops (short utterances are tiled to length)."""
    out = []
    for i in idx:
        f = feats[i]
        if len(f) < frames:
            f = f.repeat(frames // len(f) + 1, 1)
        start = rng.integers(0, len(f) - frames + 1)
        out.append(f[start : start + frames])
    return torch.stack(out)
