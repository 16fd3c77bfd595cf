"""Sweep files: an ablation written down as TOML, expanded into the same cells as the CLI.

A sweep names a suite (scale and default seeds), then one ``[[grid]]`` table per task:
the method names per family (as ``--methods`` would), and optionally a grid over the
task's hyper-parameters, one list of values per config key (dotted for nested keys,
e.g. ``"ssl.steps"``). Each hyper-parameter value becomes part of the cell's method
(``steps=200``) so that tables keep the settings apart and pair each with its own baseline.

    description = "Quantizer x objective at two pre-training lengths"
    suite = "default"
    seeds = 3

    [[grid]]
    task = "ssl_phoneme"
    methods = { quantizer = ["gumbel", "vq"], objective = ["contrastive"] }
    config = { steps = [200, 400] }
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import sys
import tomllib
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Union

from bench.data.checks import check_corpora
from bench.store import Cell
from bench.sweep import SUITES, expand

_TOP_KEYS = {"description", "suite", "seeds", "grid"}
_GRID_KEYS = {"task", "methods", "config"}


@dataclass
class GridEntry:
    task: str
    methods: dict[str, list[str]] = field(default_factory=dict)
    config: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class Sweep:
    path: Path
    description: str
    suite: str
    seeds: int | None
    grid: list[GridEntry]


def load_sweep(path: str | Path) -> Sweep:
    """Parse and check a sweep file; errors name the file and the offending key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {path} does not exist (built-in ones: sweeps/*.toml)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; known: {sorted(_TOP_KEYS)}")
    suite = raw.get("suite", "default")
    if suite not in SUITES:
        raise ValueError(f"{path}: suite {suite!r} unknown; known: {', '.join(SUITES)}")
    seeds = raw.get("seeds")
    if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
        raise ValueError(f"{path}: seeds must be a positive integer, got {seeds!r}")
    if not raw.get("grid"):
        raise ValueError(f"{path}: no [[grid]] table; add one per task")
    entries = []
    for k, table in enumerate(raw["grid"], 1):
        where = f"{path}: [[grid]] #{k}"
        unknown = sorted(set(table) - _GRID_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(_GRID_KEYS)}")
        if "task" not in table:
            raise ValueError(f'{where}: needs task = "NAME"')
        methods = {
            f: _as_list(v, f"{where} methods.{f}") for f, v in table.get("methods", {}).items()
        }
        config = {
            key: _as_list(v, f"{where} config.{key}") for key, v in table.get("config", {}).items()
        }
        entries.append(GridEntry(table["task"], methods, config))
    return Sweep(path, raw.get("description", ""), suite, seeds, entries)


def _as_list(value: Any, where: str) -> list:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError(f"{where}: empty list")
    return values


def expand_sweep(sweep: Sweep, data: dict[str, Path] | None = None) -> list[Cell]:
    """The cells of every grid entry, with hyper-parameter values set and labelled.

    Each hyper-parameter value is checked against its config field's type, then each
    corpus some entry reads is indexed once (``check_corpora``, not once per entry), so
    ``--dry-run`` and the first seconds of a run catch what would fail late, cell by cell.
    """
    from bench.tasks.base import get_task

    cells: list[Cell] = []
    read: dict[str, Path] = {}  # the corpora some entry reads, checked once at the end
    for number, entry in enumerate(sweep.grid, 1):
        accepts = get_task(entry.task).accepts_data
        data_for_task = {n: v for n, v in (data or {}).items() if n in accepts}
        read.update(data_for_task)
        base = expand(
            sweep.suite, [entry.task], sweep.seeds, entry.methods, data_for_task, check_data=False
        )
        _check_types(entry, base, f"{sweep.path}: [[grid]] #{number} (task {entry.task})")
        keys = list(entry.config)
        for values in itertools.product(*(entry.config[k] for k in keys)):
            for cell in base:
                config = copy.deepcopy(cell.config)
                for key, value in zip(keys, values, strict=True):
                    _set_dotted(config, key, value, f"{sweep.path}: task {entry.task}")
                method = {**cell.method, **{k: str(v) for k, v in zip(keys, values, strict=True)}}
                cells.append(replace(cell, config=config, method=method))
    check_corpora(read)  # after the cheap checks above: those fail first
    return cells


def _check_types(entry: GridEntry, base: list[Cell], where: str) -> None:
    """Each hyper-parameter value against the type of its config field (where known)."""
    if not base:
        return
    types = config_types(entry.task, base[0].config)
    for key, values in entry.config.items():
        if key in types:
            for value in values:
                check_value(value, types[key], f"{where}: config.{key}")


def _set_dotted(config: dict, key: str, value: Any, where: str) -> None:
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ValueError(f"{where}: config has no section {part!r} (in {key!r})")
        node = node[part]
    if leaf not in node:
        known = ", ".join(sorted(node))
        raise ValueError(f"{where}: config has no key {key!r}; known here: {known}")
    node[leaf] = value


# ------------------------------------------------------------ hyper-parameter value types


def config_types(task_name: str, config: dict) -> dict[str, Any]:
    """Dotted config key -> type annotation of its field, for the keys whose config
    dataclass is found among the dataclasses of the task's module (matched by field
    names, nested sections too, e.g. asr's ``pretraining``); other keys are left out."""
    from bench.tasks.base import get_task

    module = sys.modules[type(get_task(task_name)).__module__]
    classes = [v for v in vars(module).values() if isinstance(v, type)]
    return _field_types([c for c in classes if dataclasses.is_dataclass(c)], config, "")


def _field_types(classes: list[type], config: dict, prefix: str) -> dict[str, Any]:
    """``config_types`` of one (sub)section of a config dict."""
    leaves = {k for k, v in config.items() if not isinstance(v, dict)}
    cls = _matching_class(classes, leaves)
    hints = _type_hints(cls) if cls is not None else {}
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_field_types(classes, value, f"{prefix}{key}."))
        elif key in hints:
            out[prefix + key] = hints[key]
    return out


def _matching_class(classes: list[type], keys: set[str]) -> type | None:
    """The dataclass with the most fields, all among ``keys``, covering at least half of
    them (so a small unrelated dataclass sharing a field name is not taken), else None."""
    best, best_size = None, 0
    for cls in classes:
        names = {f.name for f in dataclasses.fields(cls)}
        if names and names <= keys and len(names) > best_size:
            best, best_size = cls, len(names)
    return best if best_size * 2 >= len(keys) else None


def _type_hints(cls: type) -> dict[str, Any]:
    """Resolved field annotations (the task modules use postponed annotations)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve: its fields go unchecked
        return {}


def check_value(value: Any, annotation: Any, where: str) -> None:
    """Raise ValueError naming ``where``, the expected type and ``value`` if ``value``
    cannot be a value of a field annotated ``annotation``; unknown annotations pass."""
    if _accepts(annotation, value) is False:
        raise ValueError(
            f"{where}: expected {_type_name(annotation)}, got {value!r} ({type(value).__name__})"
        )


_SIMPLE: dict[Any, tuple[type, ...]] = {int: (int,), float: (int, float), str: (str,)}


def _accepts(tp: Any, value: Any) -> bool | None:
    """Whether ``value`` fits annotation ``tp``; None when ``tp`` is not understood.
    int takes int (not bool), float takes int or float, bool only bool."""
    if tp is bool:
        return isinstance(value, bool)
    if tp in _SIMPLE:
        return isinstance(value, _SIMPLE[tp]) and not isinstance(value, bool)
    if tp is type(None):
        return value is None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        results = [_accepts(arm, value) for arm in args]
        return True if True in results else (None if None in results else False)
    if origin is Literal:
        return value in args
    if tp in (list, tuple) or origin in (list, tuple):
        return _accepts_sequence(origin or tp, args, value)
    return None


def _accepts_sequence(origin: Any, args: tuple, value: Any) -> bool | None:
    """A TOML array for a list/tuple field, element by element (``tuple[int, ...]``,
    ``tuple[int, str]``, ``list[float]``)."""
    if not isinstance(value, list):
        return False
    if not args:
        return True
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if len(args) != len(value):
            return False
        results = [_accepts(a, v) for a, v in zip(args, value, strict=True)]
    else:
        results = [_accepts(args[0], v) for v in value]
    return False if False in results else (None if None in results else True)


def _type_name(tp: Any) -> str:
    """``int``, ``float | None``, ``tuple[int, ...]``: the annotation as written."""
    plain = isinstance(tp, type) and typing.get_origin(tp) is None
    return tp.__name__ if plain else str(tp).replace("typing.", "")
