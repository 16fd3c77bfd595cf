"""The content of a report, independent of its format: sections per task."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import registry
from bench.metrics import TIMING_UNITS
from bench.report.dataset_cards import card_section
from bench.report.figures import FORMATS, Figure
from bench.report.tables import Table, build_table, timing_rows
from bench.report.task_figures import draw_task_figures
from bench.store import Record, latest_records, read_items
from bench.tasks.base import get_task

TIMING_KEYS = tuple(TIMING_UNITS)  # every timing key with a declared unit


@dataclass
class TaskSection:
    name: str
    table: Table
    timing: list[tuple[str, dict[str, float]]]
    figures: list[Figure] = field(default_factory=list)
    failed: list[Record] = field(default_factory=list)
    dataset_card: str | None = None
    seeds: list[int] = field(default_factory=list)


@dataclass
class ReportData:
    run_id: str
    env: dict
    sections: list[TaskSection]
    n_ok: int
    n_failed: int


def build_report_data(
    run_dir: Path, figures: bool = True, formats: Sequence[str] = FORMATS
) -> ReportData:
    records = latest_records(run_dir)
    if not records:
        raise FileNotFoundError(
            f"{run_dir}: no records found (expected {run_dir / 'records.jsonl'}); "
            "give the run folder written by `python run_all.py --out DIR`"
        )
    sections = []
    for task_name in dict.fromkeys(r.task for r in records):
        recs = [r for r in records if r.task == task_name]
        try:
            task = get_task(task_name)
        except registry.UnknownNameError as exc:
            warnings.warn(f"skipping records of {exc}", stacklevel=2)
            continue
        figs = []
        if figures:
            ok = [r for r in recs if r.status == "ok"]
            figs = draw_task_figures(task_name, ok, run_dir / "figures", formats)
        sections.append(
            TaskSection(
                name=task_name,
                table=build_table(task, recs, lambda r: read_items(run_dir, r.cell_key) or None),
                timing=timing_rows(recs, TIMING_KEYS),
                figures=figs,
                failed=[r for r in recs if r.status != "ok"],
                dataset_card=card_section(run_dir, task_name),
                seeds=sorted({r.seed for r in recs}),
            )
        )
    return ReportData(
        run_id=records[-1].run_id,
        env=records[-1].env,
        sections=sections,
        n_ok=sum(r.status == "ok" for r in records),
        n_failed=sum(r.status != "ok" for r in records),
    )
