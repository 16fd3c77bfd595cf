"""The cross-task summary: per task, the best method on its headline metric and its margin.

The headline metric is the task's ``headline`` (default: its first table metric). The
best row is the best mean among rows that are not a baseline; its margin is measured
against its own baseline row (the paired comparison the task's table also shows).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.metrics import spec
from bench.report.model import ReportData
from bench.report.tables import fmt
from bench.tasks.base import get_task


@dataclass
class SummaryRow:
    task: str
    metric: str
    best: str  # method label
    best_value: str  # formatted mean in display units
    baseline: str
    margin: str  # best - baseline in display units, signed; "" without a baseline
    marks: str  # † over items, ‡ over seeds (bench.report.tables.Entry.marks)


def summary_rows(data: ReportData) -> list[SummaryRow]:
    out = []
    for section in data.sections:
        table = section.table
        if not table.metrics:
            continue
        task = get_task(section.name)
        metric = task.headline if task.headline in table.metrics else table.metrics[0]
        s = spec(metric)
        candidates = [r for r in table.rows if not r.is_baseline and metric in r.entries]
        if s is None or not candidates:
            continue
        sign = 1 if s.higher_is_better else -1
        best = max(candidates, key=lambda r: sign * r.entries[metric].summary.mean)
        base_method = task.baseline_of(best.method)
        base = next((r for r in table.rows if r.method == base_method), None)
        margin, baseline = "", ""
        if base is not None and metric in base.entries:
            diff = best.entries[metric].summary.mean - base.entries[metric].summary.mean
            margin = f"{diff * s.scale:+.3g}"
            baseline = f"{base.label} ({fmt(metric, base.entries[metric].summary.mean)})"
        out.append(
            SummaryRow(
                task=section.name,
                metric=metric,
                best=best.label,
                best_value=fmt(metric, best.entries[metric].summary.mean),
                baseline=baseline,
                margin=margin,
                marks=best.entries[metric].marks,
            )
        )
    return out


def summary_markdown(data: ReportData) -> list[str]:
    rows = summary_rows(data)
    if not rows:
        return []
    lines = [
        "## Summary",
        "",
        "Best method per task on its headline metric, and its margin over its baseline "
        "(significant after Holm over the rows of its column: † by the paired test over test "
        "items, ‡ by the paired t-test over seeds).",
        "",
        "| task | metric | best method | value | baseline | margin |",
        "|---|---|---|---:|---|---:|",
    ]
    for r in rows:
        metric_spec = spec(r.metric)
        unit = metric_spec.unit if metric_spec else ""
        mark = f" {r.marks}" if r.marks else ""
        lines.append(
            f"| {r.task} | {r.metric} ({unit}) | {r.best} | {r.best_value} | {r.baseline} | "
            f"{r.margin}{mark} |"
        )
    return lines + [""]
