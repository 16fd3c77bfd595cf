"""The teacher of the distillation task: trained once per (seed, config), cached on disk.

Knowledge distillation (Hinton et al. 2015) trains a small student on a big teacher's
logits. Every student cell of a seed needs the same teacher, so it is trained by the first
cell that asks and saved as an artifact in the run folder (``.npz``: its logits on the
train split, in the split's order, and its test logits; its curves, timing and parameter
count as JSON); later cells and resumed runs load it.

The teacher's weights are drawn from a torch stream of its own (``torch.random.fork_rng``
seeded with the cell's seed), so a student cell gives the same numbers whether it trained
the teacher or loaded it: the cell's own stream is not advanced by the teacher.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench import registry
from bench.context import RunContext
from bench.data.digits import DigitsSplit
from bench.metrics.calibration import calibration_items, metrics_from_items
from bench.models.classifier_training import FitConfig, fit_classifier, predict
from bench.store import replacing, stable_hash

__all__ = ["parameter_count", "teacher_key", "load_or_train_teacher", "train_teacher"]

TEACHER_METRICS = ("accuracy", "nll", "ece")  # recorded as teacher_<name> in student records


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_teacher(name: str, params: dict[str, Any], num_classes: int, seed: int) -> nn.Module:
    """The registered classifier ``name``, initialised from its own stream seeded by ``seed``
    (the caller's torch stream is left where it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return registry.build("classifier", name, params=params, num_classes=num_classes)


def train_teacher(
    name: str,
    params: dict[str, Any],
    fit: FitConfig,
    split: DigitsSplit,
    ctx: RunContext,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Train the teacher on the train split; its train/test logits, test metrics, curves."""
    model = build_teacher(name, params, split.num_classes, ctx.seed).to(ctx.device)
    with torch.random.fork_rng(devices=[]):  # nothing in the loop should draw, but be sure
        result = fit_classifier(
            model,
            split.x_train,
            split.y_train,
            fit,
            ctx,
            valid=(split.x_valid, split.y_valid),
            desc=f"teacher {name} seed={ctx.seed}",
        )
    test_logits = predict(model, split.x_test, ctx)
    scored = metrics_from_items(
        calibration_items(test_logits.softmax(1), split.y_test), n_bins=n_bins
    )
    return {
        "train_logits": predict(model, split.x_train, ctx).numpy(),
        "train_ids": np.asarray(split.id_train),
        "test_logits": test_logits.numpy(),
        "metrics": {f"teacher_{k}": scored[k] for k in TEACHER_METRICS}
        | {"teacher_parameters": parameter_count(model)},
        "curves": {f"teacher_{k}": v for k, v in result.curves.items()},
        "teacher_timing": result.timing,
    }


def teacher_key(settings: dict[str, Any], ctx: RunContext) -> str:
    """What fixes a teacher: its settings (model, training, split), the seed, device, AMP."""
    return stable_hash(
        {"teacher": settings, "seed": ctx.seed, "device": str(ctx.device), "amp": ctx.amp}
    )


def load_or_train_teacher(
    path: Path,
    name: str,
    params: dict[str, Any],
    fit: FitConfig,
    split: DigitsSplit,
    ctx: RunContext,
    n_bins: int = 15,
) -> dict[str, Any]:
    """The teacher saved at ``path``, or train it and save it there (atomically)."""
    if path.exists():
        with np.load(path) as data:
            out: dict[str, Any] = {k: data[k] for k in data.files if k != "meta"}
            meta = json.loads(str(data["meta"]))
        return {**out, **meta}
    trained = train_teacher(name, params, fit, split, ctx, n_bins)
    arrays: dict[str, Any] = {k: v for k, v in trained.items() if isinstance(v, np.ndarray)}
    meta = {k: v for k, v in trained.items() if not isinstance(v, np.ndarray)}
    with replacing(path) as fh:  # a unique temporary name, renamed over path
        np.savez(fh, **arrays, meta=np.array(json.dumps(meta)))
    return trained
