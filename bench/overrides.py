"""``--set task.field=value``: override one config field of a task for one run.

The value is read as a TOML value (``600``, ``1e-3``, ``true``, ``"gru"``, ``[1, 2]``; a
bare word that is not TOML is a string, ``none`` is None), checked against the type of the
task's config field the way sweep files check theirs, and written into every cell's
config, so it is in every record and the cells' keys differ from the default ones (a
resumed run never mixes the two). Dotted keys reach nested sections
(``--set asr.pretraining.steps=100``). An unknown task or field, or a value of the wrong
type, is a usage error that lists what is known.
"""

from __future__ import annotations

import argparse
import copy
import json
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.store import Cell
from bench.sweep_file import _set_dotted, check_value, config_types


def add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TASK.FIELD=VALUE",
        help="override a task's config field for this run (repeatable), e.g. g2p.steps=600",
    )
    parser.add_argument(
        "--upstream",
        type=Path,
        default=None,
        metavar="PATH",
        help="a local transformers checkpoint folder for frontend=hf (wav2vec2, HuBERT, WavLM, "
        "data2vec-audio): --set TASK.upstream=PATH for every task of the run that takes one",
    )


def upstream_sets(cells: list[Cell], path: Path | None) -> list[str]:
    """``--upstream PATH`` as ``--set TASK.upstream=PATH`` for each task of ``cells`` whose
    config has an ``upstream`` field; the folder must exist (it is never downloaded)."""
    if path is None:
        return []
    if not path.is_dir():
        raise ValueError(
            f"--upstream {path}: no such folder; give a local transformers checkpoint "
            "folder (one written by save_pretrained), nothing is downloaded"
        )
    tasks = sorted({c.task for c in cells if "upstream" in c.config})
    if not tasks:
        ran = sorted({c.task for c in cells})
        raise ValueError(
            f"--upstream: none of this run's tasks ({', '.join(ran)}) takes an upstream; "
            "ssl_phoneme, asr, speaker, prosody and augment do (with --methods frontend=hf)"
        )
    value = json.dumps(str(path.resolve()))  # a TOML basic string
    return [f"{task}.upstream={value}" for task in tasks]


def parse_value(text: str) -> Any:
    """A TOML value; a bare word that is not one is a string; ``none``/``null`` is None."""
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["g2p.steps=600", ...]`` -> ``{"g2p": {"steps": 600}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        task, dot, key = target.strip().partition(".")
        if not sep or not dot or not task or not key:
            raise ValueError(f"--set {item!r}: expected TASK.FIELD=VALUE, e.g. g2p.steps=600")
        out.setdefault(task, {})[key] = parse_value(value.strip())
    return out


def apply_sets(cells: list[Cell], items: list[str]) -> list[Cell]:
    """``cells`` with each ``--set`` applied to the config of its task's cells."""
    sets = parse_sets(items)
    tasks = {c.task for c in cells}
    for task, values in sets.items():
        if task not in tasks:
            raise ValueError(
                f"--set {task}.…: task {task!r} is not in this run; "
                f"its tasks are: {', '.join(sorted(tasks)) or 'none'}"
            )
        example = next(c for c in cells if c.task == task)
        types = config_types(task, example.config)
        for key, value in values.items():
            if key in types:
                check_value(value, types[key], f"--set {task}.{key}")
            _set_dotted(copy.deepcopy(example.config), key, value, f"--set {task}")  # known key?
    out = []
    for cell in cells:
        if cell.task not in sets:
            out.append(cell)
            continue
        config = copy.deepcopy(cell.config)
        for key, value in sets[cell.task].items():
            _set_dotted(config, key, value, f"--set {cell.task}")
        out.append(replace(cell, config=config))
    return out


def check_upstreams(cells: list[Cell]) -> None:
    """Every ``frontend=hf`` cell names a usable checkpoint folder, checked before the first
    cell runs (a missing ``--upstream`` is a usage error, not a failed cell)."""
    hf = {str(c.config.get("upstream", "")) for c in cells if c.method.get("frontend") == "hf"}
    if hf:
        from bench.models.hf_upstream import check_upstream

        for upstream in sorted(hf):
            check_upstream(upstream)
