"""The progress bar's ETA from measured cell times.

Cells differ in cost by two orders of magnitude (a quick ``head_reset`` cell takes 0.3 s,
a quick professor-forcing Transformer 28 s), so a bar that counts cells guesses its ETA
from whichever cells happened to finish first. Instead the bar counts *expected seconds*:
each cell weighs what a cell with the same scale, task and method took on this machine
before (kept in ``$SPEECHBENCH_CACHE/cell_seconds.json``, updated as cells finish), else
the mean of that task's cells at that scale, else of that task at any scale, else of every
measured cell, else 1 s. The ETA then adjusts, as usual, to the measured rate.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean

from bench.data.synthetic import cache_root
from bench.store import Cell, write_atomic

TIMES_FILE = "cell_seconds.json"


def _key(cell: Cell) -> str:
    return json.dumps([cell.scale, cell.task, cell.method], sort_keys=True)


class CellTimes:
    """Measured seconds per (scale, task, method), read from and written to one JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else cache_root() / TIMES_FILE
        try:
            data = json.loads(self.path.read_text())
            self.seconds = {str(k): float(v) for k, v in data.items() if float(v) >= 0}
            self._kinds = {k: tuple(json.loads(k)[:2]) for k in self.seconds}  # (scale, task)
        except (OSError, ValueError, TypeError, AttributeError, IndexError):
            self.seconds, self._kinds = {}, {}  # no file yet, or unreadable: start afresh

    def expected(self, cell: Cell) -> float:
        """Seconds this cell is expected to take (the fallbacks in the module docstring)."""
        exact = self.seconds.get(_key(cell))
        if exact is not None:
            return exact
        kinds = [(self._kinds[k], v) for k, v in self.seconds.items()]
        for same in (
            [v for (s, t), v in kinds if s == cell.scale and t == cell.task],
            [v for (_, t), v in kinds if t == cell.task],
            [v for _, v in kinds],
        ):
            if same:
                return fmean(same)
        return 1.0

    def record(self, cell: Cell, seconds: float) -> None:
        """Keep the latest measured time of ``cell``'s kind; best effort (never fails a run)."""
        key = _key(cell)
        self.seconds[key], self._kinds[key] = float(seconds), (cell.scale, cell.task)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(self.seconds, indent=0, sort_keys=True))
        except OSError:
            pass
