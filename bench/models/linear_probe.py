"""A linear softmax probe on frozen embeddings (the prosody task's classifier)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["fit_linear"]


def fit_linear(
    x: np.ndarray, y: np.ndarray, n_classes: int, generator: torch.Generator, steps: int = 300
) -> Callable[[np.ndarray], torch.Tensor]:
    """Fit a linear softmax classifier on unit-normalised embeddings (full-batch Adam, lr
    0.05); returns ``logits(z)``. Initialised as ``nn.Linear`` is, from ``generator``."""
    xt = F.normalize(torch.from_numpy(x), dim=1)
    yt = torch.from_numpy(y).long()
    head = torch.nn.Linear(x.shape[1], n_classes)
    with torch.no_grad():  # nn.Linear.reset_parameters, drawing from ``generator``
        torch.nn.init.kaiming_uniform_(head.weight, a=math.sqrt(5), generator=generator)
        bound = 1 / math.sqrt(x.shape[1])
        torch.nn.init.uniform_(head.bias, -bound, bound, generator=generator)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(steps):
        loss = F.cross_entropy(head(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lambda z: head(F.normalize(torch.from_numpy(z), dim=1)).detach()
