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
import tempfile
import tomllib
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

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
        append_jsonl(self.path, asdict(record))

    def records(self) -> list[Record]:
        """Every readable record in file order; a torn or foreign line is skipped with a warning."""
        out: list[Record] = []
        for number, data in enumerate(read_jsonl(self.path), start=1):
            try:
                out.append(Record.from_dict(data))
            except TypeError as exc:
                warnings.warn(f"{self.path}: record {number} skipped ({exc})", stacklevel=2)
        return out

    def latest(self) -> dict[str, Record]:
        """The newest record of every cell, by cell key."""
        return {r.cell_key: r for r in self.records() if r.cell_key}

    def completed_keys(self) -> set[str]:
        return {key for key, rec in self.latest().items() if rec.status == "ok"}


def latest_records(run_dir: str | Path) -> list[Record]:
    """The newest record of each cell of a run folder, in first-seen order."""
    return list(RunStore(run_dir).latest().values())


# ---------------------------------------------------------------- JSON lines, shared


def append_jsonl(path: str | Path, obj: Any) -> None:
    """Append ``obj`` as one JSON line: a single write on an O_APPEND descriptor, then fsync.

    NaN/inf become null (JSON has neither). A torn last line left by a crash (no final
    newline) is moved aside to ``<name>.torn`` first, so the new line is never glued to it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(_finite(obj), allow_nan=False) + "\n").encode()
    _set_torn_tail_aside(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def _set_torn_tail_aside(path: Path) -> None:
    """Cut a last line without its newline off ``path`` into ``<name>.torn``."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        keep = fh.read().rfind(b"\n") + 1  # rare (after a crash): reading it all is fine
        fh.seek(keep)
        tail = fh.read()
        with path.with_name(path.name + ".torn").open("ab") as aside:
            aside.write(tail + b"\n")
            aside.flush()
            os.fsync(aside.fileno())
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    warnings.warn(
        f"{path}: a torn last line ({len(tail)} bytes) was moved to {path.name}.torn",
        stacklevel=3,
    )


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of ``path``, one per line, in file order ([] if it does not exist).

    A line that is not a JSON object (a torn last line after a crash, a foreign line) is
    skipped with a warning naming the file and line."""
    path = Path(path)
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict):
                    raise TypeError(f"a JSON {type(obj).__name__}, not an object")
            except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
                warnings.warn(
                    f"{path}:{number}: unreadable line skipped ({exc}); "
                    "this is expected only for the last line after a crash",
                    stacklevel=2,
                )
                continue
            out.append(obj)
    return out


# ---------------------------------------------------------------- the run folder's config.toml

CONFIG_FILE = "config.toml"


def record_invocation(
    run_dir: str | Path, invocation: dict[str, Any], cells: Iterable[Cell], device: str, amp: str
) -> None:
    """Append this invocation (its options, device, AMP and expanded cells) to the run
    folder's config.toml; the same invocation twice in a row (a resume) is written once."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG_FILE
    doc = tomllib.loads(path.read_text()) if path.exists() else {"invocation": []}
    entry = {
        **{k: v for k, v in invocation.items() if v is not None},
        "device": str(device),
        "amp": amp,
        "cells": [
            {
                "key": c.key,
                "task": c.task,
                "method": c.method,
                "seed": c.seed,
                "scale": c.scale,
                "config": c.config,
            }
            for c in cells
        ],
    }
    if doc["invocation"] and doc["invocation"][-1] == entry:
        return
    doc["invocation"].append(entry)
    write_atomic(path, tomli_w.dumps(doc))


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half a file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------- per-item results

ITEMS_DIR = "items"


def items_path(run_dir: str | Path, cell_key: str) -> Path:
    return Path(run_dir) / ITEMS_DIR / f"{cell_key}.npz"


def write_items(run_dir: str | Path, cell_key: str, items: dict[str, dict[str, Any]]) -> Path:
    """Write a cell's per-item results to ``items/<cell_key>.npz`` (compressed, atomic).

    ``items[split][column]`` is one array per column, all of one length per split, with
    an ``item_id`` column of stable string ids; stored as ``<split>/<column>``."""
    import numpy as np

    arrays: dict[str, Any] = {}
    for split, columns in items.items():
        if "/" in split or "item_id" not in columns:
            raise ValueError(
                f"items split {split!r}: needs an item_id column and no '/' in its name"
            )
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"items split {split!r}: columns differ in length: {lengths}")
        for name, values in columns.items():
            array = np.asarray(values)
            if name == "item_id":
                array = array.astype(str)
                if len(set(array.tolist())) != len(array):
                    raise ValueError(f"items split {split!r}: item ids are not unique")
            arrays[f"{split}/{name}"] = array
    path = items_path(run_dir, cell_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{cell_key}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_items(run_dir: str | Path, cell_key: str) -> dict[str, dict[str, Any]]:
    """The per-item results of one cell ({} if it wrote none)."""
    import numpy as np

    path = items_path(run_dir, cell_key)
    if not path.exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            split, _, column = key.partition("/")
            out.setdefault(split, {})[column] = data[key]
    return out
