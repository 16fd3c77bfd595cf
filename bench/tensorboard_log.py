"""``--tensorboard``: each cell's curves and final metrics as TensorBoard event files.

One event folder per cell, ``RUN_DIR/tensorboard/<task>/<method>-seed<k>``, written as the
cell's record is stored (so a crash keeps what finished), or afterwards from the records
(``run_all.py report RUN --tensorboard``). A curve is a list of numbers logged as a scalar
series; its x-axis is the curve's step list when the cell has one of the same length
(``step``, ``valid_step``, ``valid_epoch``, ``<prefix>_valid_epoch`` for ``<prefix>_valid_*``),
else the list index. Lists of text or nested lists (examples, confusion matrices) are not
series and are skipped. Final metrics go in as hyper-parameter results (the method's
choices and the seed as the hyper-parameters), so TensorBoard's HPARAMS tab compares cells.
``tensorboard`` is an optional extra: ``pip install 'speechbench[tracking]'``.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
from pathlib import Path

from bench.store import Record, latest_records

EVENTS_DIR = "tensorboard"
_STEP_SUFFIXES = ("step", "epoch")


def add_tensorboard_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help=f"also write each cell's curves and metrics as TensorBoard events "
        f"(RUN_DIR/{EVENTS_DIR}; needs the [tracking] extra)",
    )


class MissingExtra(ImportError):
    """An optional dependency the command needs is not installed (exit status 2)."""


def check_available() -> None:
    """Fail before any cell runs when tensorboard is not installed."""
    try:
        import tensorboard  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(
            "--tensorboard needs the tensorboard package: pip install 'speechbench[tracking]'"
        ) from exc


def cell_dir(run_dir: Path, record: Record) -> Path:
    """The event folder of one cell: task / method choices and seed, made path-safe."""
    method = "-".join(f"{k}={v}" for k, v in record.method.items()) or "cell"
    safe = re.sub(r"[^A-Za-z0-9=.+_-]", "_", method)
    return Path(run_dir) / EVENTS_DIR / record.task / f"{safe}-seed{record.seed}"


def _is_series(values: list) -> bool:
    numbers = [v for v in values if v is not None]
    return bool(numbers) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in numbers
    )


def _is_axis(name: str) -> bool:
    return name.split("_")[-1] in _STEP_SUFFIXES


def _axis_for(name: str, curves: dict[str, list]) -> list | None:
    """The step list that goes with curve ``name``, if the cell recorded one."""
    n = len(curves[name])
    prefix = name.rsplit("valid_", 1)[0] if "valid_" in name else ""
    candidates = [f"{prefix}valid_step", f"{prefix}valid_epoch"] if "valid_" in name else []
    candidates.append("step")
    for key in candidates:
        axis = curves.get(key)
        if axis is not None and len(axis) == n and _is_series(axis):
            return axis
    return None


def write_record(run_dir: Path, record: Record) -> Path | None:
    """Write one cell's events; returns the folder (None for a failed cell)."""
    if record.status != "ok":
        return None
    from torch.utils.tensorboard import SummaryWriter

    folder = cell_dir(run_dir, record)
    shutil.rmtree(folder, ignore_errors=True)  # a re-run cell replaces its events
    with SummaryWriter(log_dir=str(folder)) as writer:
        for name, values in record.curves.items():
            if _is_axis(name) or not isinstance(values, list) or not _is_series(values):
                continue
            axis = _axis_for(name, record.curves) or list(range(len(values)))
            for step, value in zip(axis, values, strict=True):
                if value is not None and math.isfinite(value):
                    writer.add_scalar(f"curves/{name}", float(value), int(step))
        finite = {
            f"metrics/{k}": float(v)
            for k, v in record.metrics.items()
            if isinstance(v, int | float) and math.isfinite(v)
        }
        hparams: dict[str, str | int] = {**record.method, "seed": record.seed}
        writer.add_hparams(hparams, finite, run_name=".")
    return folder


def write_run(run_dir: Path) -> list[Path]:
    """Events for every finished cell of a run folder (the latest record per cell)."""
    check_available()
    folders = [write_record(run_dir, r) for r in latest_records(run_dir)]
    return [f for f in folders if f is not None]
