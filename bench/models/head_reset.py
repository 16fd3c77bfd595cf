"""Transfer by head reset: class subsets, k-shot draws, a new last layer, and a body that
stays frozen (weights and batch-norm statistics) while only the head trains.

Used by ``bench.tasks.head_reset``: a classifier pre-trained on some classes gets its last
linear layer replaced by a freshly initialised one for new classes, then either the new
layer alone (``HeadOnly``) or the whole network is trained on a few labelled images.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn


def class_subset(
    x: torch.Tensor, y: torch.Tensor, ids: np.ndarray | None, classes: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The images of ``classes``, relabelled 0..len(classes)-1 in the order given, and
    their ids (positions in ``y`` when ``ids`` is None)."""
    ids = np.arange(len(y)) if ids is None else ids
    remap = torch.full((int(y.max()) + 1,), -1, dtype=torch.long)
    remap[torch.as_tensor(list(classes))] = torch.arange(len(classes))
    keep = remap[y] >= 0
    return x[keep], remap[y[keep]], np.asarray(ids)[keep.numpy()]


def k_shot(labels: torch.Tensor, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` random images per class (sorted). Each class's images are permuted
    once, and the first ``k`` taken, so for one ``rng`` state the 5-shot set lies inside
    the 10-shot set. ``k`` must be between 1 and the smallest class's count."""
    y = np.asarray(labels)
    classes, counts = np.unique(y, return_counts=True)
    if int(k) != k or k < 1:
        raise ValueError(f"shots must be an integer >= 1 (labelled images per class), got {k}")
    if k > counts.min():
        c = classes[np.argmin(counts)]
        raise ValueError(
            f"shots={k} is more than the {counts.min()} training images of class {c}; "
            f"use shots <= {counts.min()}"
        )
    chosen = [rng.permutation(np.flatnonzero(y == c))[:k] for c in classes]
    return np.sort(np.concatenate(chosen))


def last_linear(model: nn.Module) -> str:
    """The qualified name of the model's last ``nn.Linear`` (its output layer)."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear output layer to reset")
    return names[-1]


def reset_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Replace the last linear layer by a new one with ``num_classes`` outputs (default
    PyTorch init from torch's global RNG; seed it first); returns the new layer."""
    name = last_linear(model)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    setattr(parent, attr, new.to(old.weight.device))
    return getattr(parent, attr)


class HeadOnly(nn.Module):
    """``model`` with everything but its last linear layer frozen: no gradients, and the
    body kept in eval mode (batch norm uses and keeps its pre-trained statistics), so a
    training run changes the head's parameters and nothing else."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.head_name = last_linear(model)
        for p in self.body_parameters():
            p.requires_grad_(False)

    @property
    def head(self) -> nn.Module:
        """The trained layer (a submodule of ``model``, not registered a second time)."""
        return self.model.get_submodule(self.head_name)

    def body_parameters(self) -> Iterator[nn.Parameter]:
        head = {id(p) for p in self.head.parameters()}
        return (p for p in self.model.parameters() if id(p) not in head)

    def train(self, mode: bool = True) -> HeadOnly:
        super().train(mode)
        self.model.eval()
        self.head.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
