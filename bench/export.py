"""A run folder as a tidy pandas DataFrame, and its CSV/parquet export.

``load_records(run_dir)`` gives one row per (cell, metric) of the newest record of each
cell: the cell's task, scale, seed, status and key, one column per method axis (``-`` where
a task does not use it, empty where another task has no such axis), then ``metric`` and
``value``. That is the long form pandas, seaborn and R read directly, e.g.
``df.pivot_table(index=["task", "calibrator"], columns="metric", values="value")``.

pandas is an optional dependency (``pip install -e ".[analysis]"``); it is imported only
here, when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.store import latest_records

ID_COLUMNS = ("run_id", "task", "scale", "seed", "status", "cell_key")


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ValueError(
            'exporting records needs pandas: pip install -e ".[analysis]" (or pip install pandas)'
        ) from None
    return pandas


def load_records(run_dir: str | Path) -> Any:
    """The newest record of each cell of ``run_dir`` as a tidy DataFrame (module docstring)."""
    pd = _pandas()
    records = latest_records(run_dir)
    if not records:
        raise FileNotFoundError(
            f"{run_dir}: no records found (expected {Path(run_dir) / 'records.jsonl'}); "
            "give the run folder written by `python run_all.py --out DIR`"
        )
    axes = list(dict.fromkeys(axis for r in records for axis in r.method))
    rows = []
    for r in records:
        ids = {
            "run_id": r.run_id,
            "task": r.task,
            "scale": r.scale,
            "seed": r.seed,
            "status": r.status,
            "cell_key": r.cell_key,
        }
        method = {axis: r.method.get(axis) for axis in axes}
        metrics = r.metrics or {}
        if not metrics:  # a failed cell still appears, with no metric
            rows.append({**ids, **method, "metric": None, "value": None})
        for name, value in metrics.items():
            rows.append({**ids, **method, "metric": name, "value": value})
    columns = [*ID_COLUMNS, *axes, "metric", "value"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


def export_records(run_dir: str | Path, path: str | Path) -> Path:
    """Write ``load_records(run_dir)`` to ``path``: CSV for ``.csv``, parquet for
    ``.parquet`` (which needs pyarrow). A bare file name is put inside ``run_dir``."""
    path = Path(path)
    if not path.is_absolute() and path.parent == Path():
        path = Path(run_dir) / path
    frame = load_records(run_dir)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        try:
            frame.to_parquet(path, index=False)
        except ImportError:
            raise ValueError(
                f'{path}: writing parquet needs pyarrow: pip install -e ".[analysis]"'
            ) from None
    else:
        raise ValueError(f"{path}: unknown export format; use a .csv or .parquet file name")
    return path
