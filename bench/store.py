"""Run folders, one JSON line per cell, and resume.

A run folder holds ``records.jsonl``: one Record per finished cell, appended with a single
``write`` on an O_APPEND descriptor followed by fsync, so a crash loses at most the cell in
flight and never corrupts earlier lines. A torn last line (power loss mid-write) is skipped
with a warning when reading. Re-running the same command skips cells whose latest record
has status "ok"; failed cells are tried again and the new record is appended after the old.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORDS_FILE = "records.jsonl"


def stable_hash(obj: Any, length: int = 12) -> str:
    """Short hash of a JSON-serialisable object, independent of dict order."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Cell:
    """One unit of work: a task, one choice per method family, a seed and a scale."""

    task: str
    method: dict[str, str]
    seed: int
    scale: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identity used for resume: everything that determines the result."""
        return stable_hash(
            {
                "task": self.task,
                "method": self.method,
                "seed": self.seed,
                "scale": self.scale,
                "config": self.config,
            }
        )

    @property
    def label(self) -> str:
        methods = ",".join(f"{k}={v}" for k, v in self.method.items())
        return f"{self.task}[{methods}] seed={self.seed}"


@dataclass
class Record:
    """The result of one cell: the schema in DESIGN.md (one JSON line)."""

    run_id: str
    task: str
    method: dict[str, str]
    config: dict[str, Any]
    seed: int
    scale: str
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list] = field(default_factory=dict)
    timing: dict[str, float | None] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # warnings raised while running the cell
    started: str = ""
    seconds: float = 0.0
    cell_key: str = ""
    schema: int = SCHEMA_VERSION

    def to_json(self) -> str:
        # insertion order kept: method families stay in the task's order
        return json.dumps(_finite(asdict(self)), allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf: store them as null (the report shows "n/a")."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


class RunStore:
    """Append-only record file of one run folder."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / RECORDS_FILE

    def append(self, record: Record) -> None:
        """Append one record atomically (one write call, then fsync)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        line = (record.to_json() + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[Record]:
        """Every readable record in file order; a torn or foreign line is skipped with a warning."""
        if not self.path.exists():
            return []
        out: list[Record] = []
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    out.append(Record.from_dict(json.loads(raw)))
                except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
                    warnings.warn(
                        f"{self.path}:{number}: unreadable record skipped ({exc}); "
                        "this is expected only for the last line after a crash",
                        stacklevel=2,
                    )
        return out

    def latest(self) -> dict[str, Record]:
        """The newest record of every cell, by cell key."""
        return {r.cell_key: r for r in self.records() if r.cell_key}

    def completed_keys(self) -> set[str]:
        return {key for key, rec in self.latest().items() if rec.status == "ok"}


def latest_records(run_dir: str | Path) -> list[Record]:
    """The newest record of each cell of a run folder, in first-seen order."""
    return list(RunStore(run_dir).latest().values())
