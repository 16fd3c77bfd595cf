"""Running a speech enhancer over a test set, as a user would: one utterance at a time."""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np
import torch

from bench import harness
from bench.context import RunContext


class Enhances(Protocol):
    """What ``enhance_all`` needs of an enhancer (``methods.enhancement.Enhancer``)."""

    registry_name: str

    def eval(self) -> Any: ...

    def enhance(self, noisy: torch.Tensor, sample_rate: int) -> Any: ...


@torch.no_grad()
def enhance_all(
    model: Enhances, noisy: list[np.ndarray], sample_rate: int, ctx: RunContext
) -> tuple[list[np.ndarray], float]:
    """Enhanced audio of every utterance (one at a time) and the seconds spent enhancing
    (after one untimed warm-up call); NaN or infinite output is an error."""
    model.eval()
    model.enhance(torch.from_numpy(noisy[0]).to(ctx.device), sample_rate)  # warm-up
    out, seconds = [], 0.0
    for wave in noisy:
        x = torch.from_numpy(wave).to(ctx.device)
        harness.synchronize(ctx.device)
        t0 = time.perf_counter()
        with ctx.autocast():
            y = model.enhance(x, sample_rate).wave.float()
        harness.synchronize(ctx.device)
        seconds += time.perf_counter() - t0
        y = y.cpu().numpy()
        if not np.all(np.isfinite(y)):
            raise FloatingPointError(f"{model.registry_name} produced NaN or infinite samples")
        out.append(y)
    return out, seconds
