"""Run folders, one JSON line per cell, and resume.

A run folder holds ``records.jsonl``: one Record per finished cell, appended with a single
``write`` on an O_APPEND descriptor followed by fsync, so a crash loses at most the cell in
flight and never corrupts earlier lines. A torn last line (power loss mid-write) is moved
aside to ``records.jsonl.torn-<UTC time>`` before the next append, so the new line never
joins it. Reading skips every line that is not a valid record (torn, foreign, wrong shape),
wherever it is, and names them by line number in one warning. Re-running the same command
skips cells whose latest record has status "ok"; failed cells are tried again and the new
record is appended after the old.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import tomllib
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

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
            {k: getattr(self, k) for k in ("task", "method", "seed", "scale", "config")}
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


# ---------------------------------------------------------------- checking a record line
def _is_number(value: Any) -> bool:
    """A JSON number or null (NaN/inf are stored as null); a bool is no number."""
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _dict_of(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A check for an object with string keys whose values all pass ``ok``."""
    return lambda v: isinstance(v, dict) and all(isinstance(k, str) and ok(x) for k, x in v.items())


# what each annotation of a Record field allows in JSON, and how a warning names it
_TYPE_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "str | None": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": ("a number", _is_number),
    "dict[str, str]": ("an object of strings", _dict_of(lambda v: isinstance(v, str))),
    "dict[str, Any]": ("an object", _dict_of(lambda v: True)),
    "dict[str, float]": ("an object of numbers or null", _dict_of(_is_number)),
    "dict[str, float | None]": ("an object of numbers or null", _dict_of(_is_number)),
    "dict[str, list]": ("an object of lists", _dict_of(lambda v: isinstance(v, list))),
    "list[str]": (
        "a list of strings",
        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    ),
}
# every field's check, from its annotation: a field with a new annotation fails at import
_FIELD_CHECKS = {f.name: _TYPE_CHECKS[str(f.type)] for f in fields(Record)}
_REQUIRED = [f.name for f in fields(Record) if f.default is MISSING is f.default_factory]


def record_problem(data: Any) -> str | None:
    """Why one parsed line is not a valid Record, or None if it is.

    It must be an object with every required field, each field of the type Record declares
    (a float may be null: that is how NaN/inf are stored). Unknown fields are allowed, so
    that an older reader still reads a newer writer's records."""
    if not isinstance(data, dict):
        return _object_problem(data)
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        return "missing " + ", ".join(missing)
    wrong = [
        f"{name} is not {what}"
        for name, (what, ok) in _FIELD_CHECKS.items()
        if name in data and not ok(data[name])
    ]
    return "; ".join(wrong) or None


class RunStore:
    """Append-only record file of one run folder."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / RECORDS_FILE

    def append(self, record: Record) -> None:
        """Append one record atomically (one write call, then fsync) on a fresh line."""
        append_jsonl(self.path, asdict(record))

    def records(self) -> list[Record]:
        """Every valid record in file order. Lines that are not valid records (torn, foreign,
        wrong shape), wherever they are, are skipped and named in one warning."""
        return [Record.from_dict(data) for data in _read_valid(self.path, record_problem)]

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
    newline) is moved aside first (``_set_torn_tail_aside``): appended to, it would turn
    the new line into an unreadable one and the new record would be lost."""
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
    """Move the bytes after the last newline of ``path`` (half a line from a crash) to a
    new ``<name>.torn-<UTC time>`` beside it, truncate them off, and warn naming that file."""
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
        aside = _write_torn_file(path, tail)
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    warnings.warn(
        f"{path}: a torn last line ({len(tail)} bytes, no final newline) was moved to {aside}",
        stacklevel=3,
    )


def _write_torn_file(path: Path, tail: bytes) -> str:
    """Write ``tail`` to a new file ``<name>.torn-<UTC time>-<random>`` beside ``path``
    (mkstemp: a unique name, so a later crash never overwrites an earlier one's bytes)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.torn-{stamp}-")
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o644)  # readable like the records, not mkstemp's 0o600
        out.write(tail)
        out.flush()
        os.fsync(out.fileno())
    return aside


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of ``path``, one per line, in file order ([] if it does not exist);
    other lines are skipped with a warning (``_read_valid``)."""
    return _read_valid(Path(path), _object_problem)


def _object_problem(value: Any) -> str | None:
    """Why a JSON value is not an object, or None if it is."""
    return None if isinstance(value, dict) else f"a JSON {type(value).__name__}, not an object"


def _read_valid(path: Path, problem: Callable[[Any], str | None], shown: int = 20) -> list[Any]:
    """The JSON values of the lines of ``path`` that ``problem`` finds nothing wrong with.

    Every other line, wherever it is (torn by a crash, foreign, of the wrong shape), is
    skipped; one warning names the file and those lines by number, with why."""
    out: list[Any] = []
    bad: list[str] = []
    if not path.exists():
        return out
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError: not UTF-8
                torn = "" if raw.endswith(b"\n") else ", no final newline: torn by a crash?"
                bad.append(f"line {number}: not JSON ({getattr(exc, 'msg', exc)}){torn}")
                continue
            why = problem(value)
            if why:
                bad.append(f"line {number}: {why}")
            else:
                out.append(value)
    if bad:
        more = f"; and {len(bad) - shown} more" if len(bad) > shown else ""
        listed = "; ".join(bad[:shown]) + more
        warnings.warn(f"{path}: {len(bad)} unreadable line(s) skipped ({listed})", stacklevel=3)
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
    with replacing(Path(path)) as fh:
        fh.write(text.encode("utf-8"))


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A binary file that atomically replaces ``path`` when the block ends without error.

    Its temporary name is unique (mkstemp in the same folder): two writers never share one.
    It is removed on any error, and gets the old file's mode (or 0o644), not mkstemp's 0o600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), path.stat().st_mode & 0o777 if path.exists() else 0o644)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    with replacing(path) as fh:
        np.savez_compressed(fh, **arrays)
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
