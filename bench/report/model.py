"""The content of a report, independent of its format: sections per task."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import registry, tuning
from bench.metrics import TIMING_UNITS
from bench.report.dataset_cards import card_section
from bench.report.figures import FORMATS, Figure
from bench.report.finding_checks import RunData
from bench.report.findings_eval import evaluate_run
from bench.report.tables import (
    Table,
    build_table,
    display_label,
    entry_parts,
    header,
    timing_rows,
)
from bench.report.task_figures import draw_task_figures
from bench.report.tuning_table import TuningTable, tuning_table
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
    timing_display: list[str] = field(default_factory=list)  # display labels of ``timing``
    tuning: TuningTable = field(default_factory=TuningTable)  # trials, when the task tunes


@dataclass
class ReportData:
    run_id: str
    env: dict
    sections: list[TaskSection]
    n_ok: int
    n_failed: int
    findings: list = field(default_factory=list)  # bench.report.findings.Result


def build_report_data(
    run_dir: Path, figures: bool = True, formats: Sequence[str] = FORMATS
) -> ReportData:
    records = latest_records(run_dir)
    if not records:
        raise FileNotFoundError(
            f"{run_dir}: no records found (expected {run_dir / 'records.jsonl'}); "
            "give the run folder written by `python run_all.py --out DIR`"
        )
    run = RunData(run_dir, records)  # one cache of items for the findings and tuning gains
    sections = []
    for task_name in dict.fromkeys(r.task for r in records):
        everything = [r for r in records if r.task == task_name]
        recs = [r for r in everything if not tuning.is_trial(r.method)]  # trials: own table
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
                timing_display=[lbl for lbl, _ in timing_rows(recs, TIMING_KEYS, display_label)],
                figures=figs,
                failed=[r for r in everything if r.status != "ok"],
                dataset_card=card_section(run_dir, task_name),
                seeds=sorted({r.seed for r in recs}),
                tuning=tuning_table(task, everything, run),
            )
        )
    return ReportData(
        run_id=records[-1].run_id,
        env=records[-1].env,
        sections=sections,
        n_ok=sum(r.status == "ok" for r in records),
        n_failed=sum(r.status != "ok" for r in records),
        findings=evaluate_run(run_dir, records, run),
    )


@dataclass(frozen=True)
class ColumnView:
    name: str
    unit: str  # "" when the metric declares none
    arrow: str  # "↑", "↓" or ""


@dataclass(frozen=True)
class CellView:
    """One table cell as parts, each already formatted in display units (None: no value)."""

    value: str
    seed_half_width: str  # "" when none
    deterministic: bool
    item_half_width: str  # "" when none
    marks: str  # "†", "‡", both or ""
    bold: bool  # the best of its column or tied with it (bench.report.tables.TIE_RULE)


@dataclass(frozen=True)
class RowView:
    label: str  # family=name, ... (what report.md shows)
    display: str  # display names joined by " · " (what HTML and LaTeX show)
    n: int  # seeds
    baseline: bool  # the row is its task's baseline (shown as "(baseline)")
    cells: list[CellView | None]


@dataclass(frozen=True)
class TableView:
    """A task's table, format-neutral: what every renderer's template iterates over."""

    columns: list[ColumnView]
    rows: list[RowView]


def table_view(table: Table) -> TableView:
    columns = [ColumnView(*header(m)) for m in table.metrics]
    rows = []
    for row in table.rows:
        cells: list[CellView | None] = []
        for m in table.metrics:
            e = row.entries.get(m)
            if e is None:
                cells.append(None)
                continue
            p = entry_parts(m, e)
            cells.append(
                CellView(
                    p.value, p.seed_half_width, p.deterministic, p.item_half_width, e.marks, e.bold
                )
            )
        baseline = row.is_baseline and bool(table.baseline_note)
        rows.append(RowView(row.label, row.display, len(row.seeds), baseline, cells))
    return TableView(columns, rows)
