"""The cross-task summary: per task, the best method on its headline metric and its margin.

The headline metric is the task's ``headline`` (default: its first table metric). The
best row is the best mean among rows that are not a baseline; its margin is measured
against its own baseline row (the paired comparison the task's table also shows), and said
in words by the metric's direction: "better" or "worse" (⚠: the best method is worse than
its baseline, e.g. a higher error rate).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.metrics import spec
from bench.report.model import ReportData
from bench.report.tables import fmt
from bench.report.templating import pipe_table
from bench.tasks.base import get_task

WORSE_FLAG = "⚠"


@dataclass
class SummaryRow:
    task: str
    metric: str
    best: str  # method label (family=name, ...)
    best_value: str  # formatted mean in display units
    baseline: str  # "label (value)"; "" without a baseline
    margin: str  # best - baseline in display units, signed; "" without a baseline
    marks: str  # † over items, ‡ over seeds (bench.report.tables.Entry.marks)
    verdict: str = ""  # "better", "worse" or "same" by the metric's direction; "" no baseline
    best_display: str = ""  # the best method's display label
    baseline_display: str = ""  # "display label (value)"

    @property
    def worse(self) -> bool:
        """The best method is worse than its baseline on the headline metric."""
        return self.verdict == "worse"

    @property
    def margin_text(self) -> str:
        """E.g. "+45.7 (worse) ⚠", "-3.28 (better) †"."""
        if not self.margin:
            return ""
        text = f"{self.margin} ({self.verdict})"
        return text + (f" {self.marks}" if self.marks else "") + (f" {WORSE_FLAG}" * self.worse)


def verdict(diff: float, higher_is_better: bool) -> str:
    """ "better", "worse" or "same" for ``diff`` = method − baseline."""
    if diff == 0:
        return "same"
    return "better" if (diff > 0) == higher_is_better else "worse"


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
        row = SummaryRow(
            task=section.name,
            metric=metric,
            best=best.label,
            best_value=fmt(metric, best.entries[metric].summary.mean),
            baseline="",
            margin="",
            marks=best.entries[metric].marks,
            best_display=best.display,
        )
        if base is not None and metric in base.entries:
            base_mean = base.entries[metric].summary.mean
            diff = best.entries[metric].summary.mean - base_mean
            row.margin = f"{diff * s.scale:+.3g}"
            row.verdict = verdict(diff, s.higher_is_better)
            row.baseline = f"{base.label} ({fmt(metric, base_mean)})"
            row.baseline_display = f"{base.display} ({fmt(metric, base_mean)})"
        out.append(row)
    return out


INTRO = (
    "Best method per task on its headline metric, and its margin over its baseline "
    "(better or worse by the metric's direction; "
    f"{WORSE_FLAG} the best method is worse than its baseline; "
    "significant after Holm over the rows of its column: † by the paired test over test "
    "items, ‡ by the paired t-test over seeds)."
)
HEADER = ("task", "metric", "best method", "value", "baseline", "margin")


def metric_title(metric: str) -> str:
    metric_spec = spec(metric)
    return f"{metric} ({metric_spec.unit})" if metric_spec and metric_spec.unit else metric


def summary_markdown(data: ReportData) -> list[str]:
    rows = summary_rows(data)
    if not rows:
        return []
    cells = [
        [r.task, metric_title(r.metric), r.best, r.best_value, r.baseline, r.margin_text]
        for r in rows
    ]
    align = ["---", "---", "---", "---:", "---", "---:"]
    return ["## Summary", "", INTRO, "", *pipe_table(HEADER, align, cells), ""]
