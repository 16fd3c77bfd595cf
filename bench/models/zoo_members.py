"""The zoo of digits classifiers as data: what each member is, and how it is built and trained.

A member is a dict: architecture (``arch``: mlp, cnn, resnet, vit), ``width`` (MLP hidden
units, CNN/ResNet channels, ViT embedding size), ``patch`` (ViT only), ``epochs``,
``weight_decay`` (AdamW's, 0: Adam), ``label_smoothing``, ``augment`` (a random shift and
rotation) and ``distill`` (Hinton et al. 2015 knowledge distillation from a CNN teacher).
Its name spells all of them, e.g. ``cnn-w16-e60-wd0-ls0.1-aug-kd``, so a name is stable and
says what the model is. The members are chosen to span accuracies and both directions of
miscalibration: long training without regularisation makes networks overconfident (Guo et
al. 2017), label smoothing makes them under-confident (Müller et al. 2019), which is where
temperature scaling can harm (Galil et al. 2023, Figure 4).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench import registry
from bench.context import RunContext
from bench.data.digits import DigitsSplit
from bench.models import digits_zoo  # registers resnet and vit; the augmentation
from bench.models.classifier_training import FitConfig, fit_classifier
from bench.run_lock import artifact_lock
from bench.store import replacing
from bench.training import TrainResult
from methods.distillation import kd_loss

ARCHITECTURES = ("mlp", "cnn", "resnet", "vit")
KEYS = ("arch", "width", "patch", "epochs", "weight_decay", "label_smoothing", "augment", "distill")


@dataclass(frozen=True)
class Member:
    """One validated zoo member."""

    arch: str
    width: int
    epochs: int
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = False
    distill: bool = False
    patch: int | None = None  # ViT patch size

    @property
    def name(self) -> str:
        patch = f"-p{self.patch}" if self.arch == "vit" else ""
        return (
            f"{self.arch}{patch}-w{self.width}-e{self.epochs}-wd{self.weight_decay:g}"
            f"-ls{self.label_smoothing:g}" + "-aug" * self.augment + "-kd" * self.distill
        )

    def build(self, num_classes: int) -> nn.Module:
        """The untrained network (registry family "classifier")."""
        params: dict[str, dict[str, Any]] = {
            "mlp": {"hidden": self.width},
            "cnn": {"channels": self.width, "hidden": 64},
            "resnet": {"channels": self.width},
            "vit": {"dim": self.width, "patch_size": self.patch},
        }
        return registry.build(
            "classifier", self.arch, params=params[self.arch], num_classes=num_classes
        )


def member_name(spec: Mapping[str, Any]) -> str:
    """The stable name of a member dict (validated)."""
    return check_member(spec).name


def check_member(spec: Mapping[str, Any]) -> Member:
    """A member dict as a Member; ValueError naming the bad value and the fix."""
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise ValueError(f"zoo member {dict(spec)}: unknown key(s) {unknown}; known: {KEYS}")
    arch = spec.get("arch")
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"zoo member {dict(spec)}: unknown architecture {arch!r}; "
            f"use one of {', '.join(ARCHITECTURES)}"
        )
    patch = spec.get("patch")
    if arch == "vit":
        if not isinstance(patch, int) or patch < 1 or 8 % patch:
            raise ValueError(
                f"zoo member {dict(spec)}: vit patch {patch!r} does not divide the 8x8 "
                "digits; use patch 1, 2, 4 or 8"
            )
    elif patch is not None:
        raise ValueError(f"zoo member {dict(spec)}: only vit has a patch size; remove 'patch'")
    member = Member(
        arch=arch,
        width=int(spec.get("width", 0)),
        epochs=int(spec.get("epochs", 0)),
        weight_decay=float(spec.get("weight_decay", 0.0)),
        label_smoothing=float(spec.get("label_smoothing", 0.0)),
        augment=bool(spec.get("augment", False)),
        distill=bool(spec.get("distill", False)),
        patch=patch,
    )
    if member.width < 1 or member.epochs < 1:
        raise ValueError(f"zoo member {dict(spec)}: width and epochs must be >= 1")
    if member.weight_decay < 0 or not 0 <= member.label_smoothing < 1:
        raise ValueError(
            f"zoo member {dict(spec)}: weight_decay must be >= 0, label_smoothing in [0, 1)"
        )
    if member.distill and member.label_smoothing:
        raise ValueError(
            f"zoo member {member.name}: distillation's hard term has no label smoothing; "
            "set label_smoothing 0 or distill False"
        )
    return member


def check_members(specs: Iterable[Mapping[str, Any]]) -> list[Member]:
    """Validate a zoo: every member valid, names unique."""
    members = [check_member(s) for s in specs]
    seen: set[str] = set()
    for m in members:
        if m.name in seen:
            raise ValueError(f"zoo member {m.name} is listed twice; member names must be unique")
        seen.add(m.name)
    return members


def _m(
    arch: str,
    width: int,
    epochs: int,
    wd: float = 0.0,
    ls: float = 0.0,
    aug: bool = False,
    kd: bool = False,
    patch: int | None = None,
) -> dict[str, Any]:
    spec = {"arch": arch, "width": width, "epochs": epochs, "weight_decay": wd}
    spec |= {"label_smoothing": ls, "augment": aug, "distill": kd}
    return spec | ({"patch": patch} if patch is not None else {})


# The default zoo: per architecture a small grid over width and epochs, then one axis at a
# time (weight decay, label smoothing 0.1 / 0.2, augmentation, distillation) and a few
# combinations. Epochs are sized so that 3 seeds of the whole zoo fit 10 minutes with
# --jobs 2 on two cores (measured: 15-100 ms per epoch on one thread).
MEMBERS: list[dict[str, Any]] = [
    # MLP: cheap, so long runs and a wide one (the most overconfident)
    _m("mlp", 8, 5),
    _m("mlp", 32, 10),
    _m("mlp", 32, 100),
    _m("mlp", 128, 30),
    _m("mlp", 128, 100),
    _m("mlp", 512, 100),
    _m("mlp", 128, 100, wd=0.05),
    _m("mlp", 128, 100, ls=0.1),
    _m("mlp", 128, 100, ls=0.2),
    _m("mlp", 128, 100, aug=True),
    _m("mlp", 128, 100, kd=True),
    _m("mlp", 128, 30, ls=0.1, aug=True),
    _m("mlp", 512, 30, aug=True, kd=True),
    # CNN (LeNet-like)
    _m("cnn", 4, 3),
    _m("cnn", 8, 10),
    _m("cnn", 8, 60),
    _m("cnn", 16, 30),
    _m("cnn", 16, 60),
    _m("cnn", 32, 30),
    _m("cnn", 16, 60, wd=0.05),
    _m("cnn", 16, 60, ls=0.1),
    _m("cnn", 16, 60, ls=0.2),
    _m("cnn", 16, 60, aug=True),
    _m("cnn", 16, 60, kd=True),
    _m("cnn", 8, 30, ls=0.1, aug=True),
    _m("cnn", 16, 30, aug=True, kd=True),
    # ResNet
    _m("resnet", 4, 3),
    _m("resnet", 8, 10),
    _m("resnet", 8, 40),
    _m("resnet", 16, 30),
    _m("resnet", 16, 40),
    _m("resnet", 8, 40, wd=0.05),
    _m("resnet", 8, 40, ls=0.1),
    _m("resnet", 8, 40, ls=0.2),
    _m("resnet", 8, 40, aug=True),
    _m("resnet", 8, 40, kd=True),
    _m("resnet", 8, 30, ls=0.1, aug=True),
    _m("resnet", 16, 30, aug=True, kd=True),
    _m("resnet", 16, 30, ls=0.2, wd=0.05),
    # ViT over 4x4 patches (4 tokens) and 2x2 patches (16 tokens)
    _m("vit", 16, 10, patch=2),
    _m("vit", 32, 30, patch=4),
    _m("vit", 32, 100, patch=4),
    _m("vit", 64, 60, patch=4),
    _m("vit", 32, 30, patch=2),
    _m("vit", 32, 60, patch=2),
    _m("vit", 32, 60, wd=0.05, patch=4),
    _m("vit", 32, 60, ls=0.1, patch=4),
    _m("vit", 32, 60, ls=0.2, patch=4),
    _m("vit", 32, 60, aug=True, patch=4),
    _m("vit", 32, 60, kd=True, patch=4),
    _m("vit", 32, 60, ls=0.1, aug=True, patch=2),
    _m("vit", 32, 30, aug=True, kd=True, patch=2),
]

# The quick zoo: one short run per architecture, one distilled (a CI smoke test).
QUICK_MEMBERS: list[dict[str, Any]] = [
    _m("mlp", 64, 10, kd=True),
    _m("cnn", 8, 8, ls=0.1, aug=True),
    _m("resnet", 8, 6),
    _m("vit", 32, 10, wd=0.05, patch=4),
]

ZOOS: dict[str, list[dict[str, Any]]] = {"default": MEMBERS, "quick": QUICK_MEMBERS}


def zoo(name: str) -> list[Member]:
    """The validated members of the zoo ``name``."""
    if name not in ZOOS:
        raise ValueError(f"unknown zoo {name!r}; known zoos: {', '.join(ZOOS)}")
    return check_members(ZOOS[name])


def names_of(specs: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Member names of a zoo (validated)."""
    return tuple(m.name for m in check_members(specs))


def fit_member(
    member: Member,
    split: DigitsSplit,
    ctx: RunContext,
    *,
    teacher_logits: torch.Tensor | None = None,
    batch_size: int = 64,
    lr: float = 3e-3,
    eval_every: int = 10,
    kd_temperature: float = 4.0,
    kd_alpha: float = 0.9,
) -> tuple[nn.Module, TrainResult]:
    """Train ``member`` on the train split; ``teacher_logits`` (train split, in its order)
    are needed when it is distilled (Hinton et al. 2015, T and α the paper's MNIST-like
    choice kept by methods/distillation)."""
    if member.distill and teacher_logits is None:
        raise ValueError(f"zoo member {member.name} is distilled; pass the teacher's logits")
    model = member.build(split.num_classes).to(ctx.device)
    fit = FitConfig(
        epochs=member.epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=member.weight_decay,
        label_smoothing=member.label_smoothing,
        eval_every=min(eval_every, member.epochs),
    )
    loss_fn = None
    if member.distill:
        assert teacher_logits is not None
        teacher = teacher_logits.to(ctx.device)

        def loss_fn(logits: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor):
            return kd_loss(logits, labels, teacher[idx], kd_temperature, kd_alpha)

    result = fit_classifier(
        model,
        split.x_train,
        split.y_train,
        fit,
        ctx,
        valid=(split.x_valid, split.y_valid),
        loss_fn=loss_fn,
        augment=digits_zoo.shift_rotate if member.augment else None,
        desc=f"train {member.name} seed={ctx.seed}",
    )
    return model, result


def cached(path: Path, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Load the npz artifact at ``path`` or make it once: arrays, plus JSON for the rest."""
    with artifact_lock(path):
        if path.exists():
            with np.load(path) as data:
                out = {k: data[k] for k in data.files if k != "meta"}
                return out | json.loads(str(data["meta"]))
        made = make()
        arrays: dict[str, Any] = {k: v for k, v in made.items() if isinstance(v, np.ndarray)}
        meta = {k: v for k, v in made.items() if k not in arrays}
        with replacing(path) as fh:  # a unique temporary name, renamed over path
            np.savez(fh, **arrays, meta=np.array(json.dumps(meta)))
        return made
