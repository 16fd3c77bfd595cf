"""What the digits metric-learning task evaluates: which layer of the CNN, and references.

The losses train the output of ``SmallCNN`` (its two-layer head acts as a projection
head), but what is scored on the unseen classes is the representation *before* the head:
the max-pooled conv features, flattened ("pooled"). SimCLR (Chen et al., ICML 2020,
Sec. 4.2) showed that the layer before a nonlinear projection head keeps the information
the training loss does not need, while the head's output discards it; here the head's
output collapses onto the five training classes and scores below its random init on the
unseen ones (measured in bench/tasks/digits_metric.py). "output" (the head's output, as
before issue 21) is kept as the comparison. Raw pixels are the no-learning reference.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn

from bench.metrics import weighted
from bench.metrics.retrieval import (
    average_precisions_at_r,
    cosine_matrix,
    first_correct_ranks,
    map_at_r_from_items,
    recall_at_1_from_ranks,
)
from bench.models.digits import SmallCNN

__all__ = [
    "LAYERS",
    "REFERENCE_SPLITS",
    "compact_embedding",
    "embed",
    "nearest_recall_at_1",
    "pixel_items",
    "ranking_items",
    "reference_forms",
    "reference_metrics",
]

LAYERS = ("pooled", "output")  # the scored representation: before / after the head
REFERENCE_SPLITS = ("output", "pixels")  # per-item context beside the scored "test" split


@torch.no_grad()
def embed(model: nn.Module, x: torch.Tensor, device: torch.device, layer: str) -> np.ndarray:
    """(N, D) embeddings of ``x``: ``pooled`` the flattened ``model.features`` (D = 32 x
    channels for the 8x8 digits), ``output`` the model's output (the trained embedding)."""
    if layer not in LAYERS:
        raise ValueError(f"unknown embedding layer {layer!r}; use one of {', '.join(LAYERS)}")
    model.eval()
    x = x.to(device)
    if layer == "output":
        return model(x).float().cpu().numpy()
    if not isinstance(model, SmallCNN):
        raise ValueError(f"layer 'pooled' needs the digits SmallCNN, got {type(model).__name__}")
    return model.features(x).flatten(1).float().cpu().numpy()


def compact_embedding(embeddings: np.ndarray) -> np.ndarray:
    """An int8 copy, each row scaled to max |value| 127, for the items file: the EER's
    trials are rebuilt from it, and cosine ignores a row's scale. A quarter of float32's
    size (a 512-wide embedding); cosines move by < 0.01, the EER by ~0.01 points."""
    x = np.asarray(embeddings, dtype=np.float64)
    peak = np.maximum(np.abs(x).max(axis=1, keepdims=True), 1e-12)
    return np.round(x / peak * 127).astype(np.int8)


def nearest_recall_at_1(embeddings, labels) -> float:
    """Recall@1 from the argmax of each cosine row (numpy's first maximum, the tie rule of
    ``retrieval.recall_at_1``) without sorting whole rows: for the training curve."""
    nearest = cosine_matrix(embeddings).numpy().argmax(axis=1)
    labels = np.asarray(labels)
    return float(np.mean(labels[nearest] == labels))


def ranking_items(embeddings, labels, ids) -> dict[str, np.ndarray]:
    """Per query: its label, the rank of its nearest same-label item and its AP@R (the
    columns ``weighted.retrieval_forms`` reads), without clusters or embeddings."""
    return {
        "item_id": np.asarray(ids).astype(str),
        "label": np.asarray(labels),
        "rank": first_correct_ranks(embeddings, labels),
        "ap_at_r": average_precisions_at_r(embeddings, labels),
    }


@lru_cache(maxsize=4)
def _pixel_items(key: bytes, shape: tuple[int, ...], labels: bytes, ids: bytes):
    x = np.frombuffer(key, dtype=np.float32).reshape(shape).copy()
    y = np.frombuffer(labels, dtype=np.int64).copy()
    return ranking_items(x.reshape(len(x), -1), y, np.frombuffer(ids, dtype=np.int64).copy())


def pixel_items(x: torch.Tensor, labels: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    """``ranking_items`` of the raw pixels (cosine), cached: every cell shares them."""
    arr = np.ascontiguousarray(x.numpy(), dtype=np.float32)
    y = np.ascontiguousarray(labels, dtype=np.int64)
    i = np.ascontiguousarray(ids, dtype=np.int64)
    return dict(_pixel_items(arr.tobytes(), arr.shape, y.tobytes(), i.tobytes()))


def reference_forms() -> dict[str, weighted.ItemForm]:
    """Item forms of ``<split>_recall_at_1`` and ``<split>_map_at_r`` per reference split."""
    return {
        f"{split}_{name}": form
        for split in REFERENCE_SPLITS
        for name, form in weighted.retrieval_forms(split).items()
    }


def reference_metrics(items: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """``<split>_recall_at_1`` and ``<split>_map_at_r`` of the reference splits present."""
    out: dict[str, float] = {}
    for split in REFERENCE_SPLITS:
        if split in items:
            out[f"{split}_recall_at_1"] = recall_at_1_from_ranks(items[split]["rank"])
            out[f"{split}_map_at_r"] = map_at_r_from_items(items[split]["ap_at_r"])
    return out
