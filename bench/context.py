"""What a task may use from the harness while it runs one cell: device, AMP, the run
folder, progress bars, and the cell's random streams.

The harness seeds python, numpy and torch once per cell (``bench.cells``) and hands the
task a context bound to the cell's seed; tasks take every generator from it and never
seed anything themselves, so a cell's seed alone fixes its data order, init and masking.
"""

from __future__ import annotations

import dataclasses
import zlib
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
    seed: int = 0  # the cell's seed (set by for_cell)

    def for_cell(self, seed: int) -> RunContext:
        return dataclasses.replace(self, seed=seed)

    # ---- random streams -------------------------------------------------------------
    def _stream_seed(self, stream: str | None) -> int | list[int]:
        if stream is None:
            return self.seed
        return [self.seed, zlib.crc32(stream.encode())]

    def rng(self, stream: str | None = None) -> np.random.Generator:
        """A new numpy generator for this cell. Each call starts the stream afresh; name a
        ``stream`` (e.g. "batches", "subset") for draws that must be independent."""
        return np.random.default_rng(self._stream_seed(stream))

    def generator(self, stream: str | None = None) -> torch.Generator:
        """A new CPU torch generator for this cell (same rules as ``rng``)."""
        seed = self._stream_seed(stream)
        if isinstance(seed, list):
            seed = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0] >> 1)
        return torch.Generator().manual_seed(seed)

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
