"""What a task may use from the harness while it runs one cell: device, AMP, the run
folder, progress bars, and the cell's random streams.

The harness seeds python, numpy and torch once per cell (``bench.cells``) and hands the
task a context bound to the cell's seed; tasks take every generator from it and never
seed anything themselves, so a cell's seed alone fixes its data order, init and masking.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bench import harness


@dataclass(frozen=True)
class RunContext:
    """The harness's side of one run; ``for_cell(seed)`` binds it to one cell's seed."""

    device: torch.device
    amp: str = "off"
    run_dir: Path = Path("reports/scratch")
    quiet: bool = False
    tensorboard: bool = False  # also write TensorBoard events per cell (--tensorboard)
    seed: int = 0  # the cell's seed (set by for_cell)

    def for_cell(self, seed: int) -> RunContext:
        return dataclasses.replace(self, seed=seed)

    # ---- random streams -------------------------------------------------------------
    def rng(self) -> np.random.Generator:
        """A new numpy generator seeded with the cell's seed (each call starts afresh)."""
        return np.random.default_rng(self.seed)

    def generator(self) -> torch.Generator:
        """A new CPU torch generator seeded with the cell's seed (each call starts afresh)."""
        return torch.Generator().manual_seed(self.seed)

    # ---- harness services -----------------------------------------------------------
    def progress(self, iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
        """A tqdm bar that respects --quiet and never outlives its loop."""
        kwargs.setdefault("leave", False)
        kwargs.setdefault("dynamic_ncols", True)
        return tqdm(iterable, disable=self.quiet, **kwargs)

    def autocast(self):
        return harness.autocast(self.device, self.amp)

    def artifact_dir(self, task: str) -> Path:
        path = self.run_dir / "artifacts" / task
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def peak_flops(self) -> float:
        return harness.measured_peak_flops(self.device, self.amp)
