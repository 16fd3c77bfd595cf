"""Aggregate records into per-task tables: mean ± Student-t 95% interval over seeds (n per
row), deterministic cells marked, best marked, paired t-test against the baseline."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from bench.metrics import spec
from bench.report.stats import Summary, holm, mean_ci, paired_pvalue
from bench.store import Record

SIGNIFICANCE = 0.05
DETERMINISTIC = "(det.)"  # identical over the seeds: no interval, no test


def method_label(method: dict[str, str]) -> str:
    return ", ".join(f"{family}={name}" for family, name in method.items())


@dataclass
class Entry:
    summary: Summary
    pvalue: float = math.nan  # paired test against the row's baseline
    p_holm: float = math.nan  # the same, Holm-adjusted over the rows of the column
    best: bool = False

    @property
    def significant(self) -> bool:
        return self.p_holm < SIGNIFICANCE


@dataclass
class Row:
    method: dict[str, str]
    seeds: list[int]
    entries: dict[str, Entry] = field(default_factory=dict)
    is_baseline: bool = False

    @property
    def label(self) -> str:
        return method_label(self.method)


@dataclass
class Table:
    task: str
    title: str
    metrics: list[str]
    rows: list[Row]
    baseline_note: str = ""


def header(metric: str) -> tuple[str, str, str]:
    """(name, unit, arrow) of a column."""
    s = spec(metric)
    if s is None:
        return metric, "", ""
    return metric, s.unit, s.arrow


def display(metric: str, value: float) -> float:
    s = spec(metric)
    return value * s.scale if s else value


def decimals(v: float) -> int:
    """Digits after the point: about three significant digits, at most four decimals."""
    if v == 0 or not math.isfinite(v):
        return 2
    return max(0, min(4, 2 - math.floor(math.log10(abs(v)))))


def fmt(metric: str, value: float | None, digits: int | None = None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    v = display(metric, value)
    return f"{v:.{decimals(v) if digits is None else digits}f}"


def fmt_entry(metric: str, entry: Entry) -> str:
    """``mean ± half-CI`` in display units, both to the mean's precision."""
    s = entry.summary
    digits = decimals(display(metric, s.mean)) if math.isfinite(s.mean) else None
    text = fmt(metric, s.mean, digits)
    if s.deterministic:
        text += f" {DETERMINISTIC}"
    elif s.n >= 2 and math.isfinite(s.half_width):
        text += f" ± {fmt(metric, s.half_width, digits)}"
    return text


def build_table(task, records: list[Record]) -> Table:
    """One table: rows are method combinations, columns are the task's table metrics."""
    ok = [r for r in records if r.status == "ok"]
    by_method: dict[tuple, dict[int, Record]] = defaultdict(dict)
    for rec in ok:
        by_method[tuple(rec.method.items())][rec.seed] = rec
    metrics = [m for m in task.table_metrics if any(m in r.metrics for r in ok)]
    rows: list[Row] = []
    for key, by_seed in by_method.items():
        method = dict(key)
        seeds = sorted(by_seed)
        row = Row(method=method, seeds=seeds, is_baseline=task.baseline_of(method) is None)
        base = by_method.get(tuple((task.baseline_of(method) or {}).items()))
        for metric in metrics:
            values = [by_seed[s].metrics.get(metric) for s in seeds]
            entry = Entry(mean_ci(values))
            if base is not None:
                common = [s for s in seeds if s in base]
                entry.pvalue = paired_pvalue(
                    [by_seed[s].metrics.get(metric) for s in common],
                    [base[s].metrics.get(metric) for s in common],
                )
            row.entries[metric] = entry
        rows.append(row)
    for metric in metrics:  # one family per column: every row's test against its baseline
        entries = [r.entries[metric] for r in rows if metric in r.entries]
        for entry, adjusted in zip(entries, holm([e.pvalue for e in entries]), strict=True):
            entry.p_holm = adjusted
    _mark_best(rows, metrics, task)
    note = ""
    if task.baseline:
        note = "baseline: " + ", ".join(f"{k}={v}" for k, v in task.baseline.items())
    return Table(
        task=task.name,
        title=task.title or task.name,
        metrics=metrics,
        rows=rows,
        baseline_note=note,
    )


def _mark_best(rows: list[Row], metrics: list[str], task) -> None:
    """Bold the best mean per column within each group of rows sharing a baseline.

    E.g. calibrators are ranked per classifier, not across classifiers.
    """
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        base = task.baseline_of(row.method) or row.method
        groups[tuple(base.items())].append(row)
    for group in groups.values():
        for metric in metrics:
            s = spec(metric)
            if s is None or not s.ranked:
                continue
            means = [(r.entries[metric].summary.mean, r) for r in group if metric in r.entries]
            means = [(m, r) for m, r in means if math.isfinite(m)]
            if not means:
                continue
            values = [m for m, _ in means]
            best = max(values) if s.higher_is_better else min(values)
            for m, r in means:
                r.entries[metric].best = m == best


def timing_rows(records: list[Record], keys: tuple[str, ...]) -> list[tuple[str, dict[str, float]]]:
    """Median over seeds of each timing key, per method."""
    grouped: dict[tuple, list[Record]] = defaultdict(list)
    for rec in records:
        if rec.status == "ok":
            grouped[tuple(rec.method.items())].append(rec)
    out = []
    for key, recs in grouped.items():
        values = {}
        for k in keys:
            vals = sorted(v for r in recs if (v := r.timing.get(k)) is not None)
            if vals:
                values[k] = vals[len(vals) // 2]
        out.append((method_label(dict(key)), values))
    return out
