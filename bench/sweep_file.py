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
import itertools
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
    """The cells of every grid entry, with hyper-parameter values set and labelled."""
    cells: list[Cell] = []
    for entry in sweep.grid:
        data_for_task = None
        if data:  # only the corpora this task reads
            from bench.tasks.base import get_task

            data_for_task = {
                k: v for k, v in data.items() if k in get_task(entry.task).accepts_data
            }
        base = expand(sweep.suite, [entry.task], sweep.seeds, entry.methods, data_for_task)
        keys = list(entry.config)
        for values in itertools.product(*(entry.config[k] for k in keys)):
            for cell in base:
                config = copy.deepcopy(cell.config)
                for key, value in zip(keys, values, strict=True):
                    _set_dotted(config, key, value, f"{sweep.path}: task {entry.task}")
                method = {**cell.method, **{k: str(v) for k, v in zip(keys, values, strict=True)}}
                cells.append(replace(cell, config=config, method=method))
    return cells


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
