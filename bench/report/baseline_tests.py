"""Each row against its baseline row, with effect sizes beside p-values, and the smallest
difference each table could detect; as Markdown (the headline metric) and CSV (all).

The effect size is the difference itself, in the metric's display units, with its 95%
bootstrap interval over test items, and relative to the baseline's value; p-values come
from the paired test over items (bootstrap, or McNemar for 0/1 metrics) and from the
paired t-test over seeds, each Holm-adjusted over the rows of its column.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.report.tables import SIGNIFICANCE, Table, decimals, display
from bench.report.templating import pipe_table

POWER_NOTE = (
    f"Smallest difference from the baseline each column could detect (α = {SIGNIFICANCE}, "
    "80% power; median over the rows tested), by the paired test over items / over seeds"
)


@dataclass(frozen=True)
class TestRow:
    method: str
    metric: str
    delta: float  # method − baseline, display units
    delta_lo: float  # 95% bootstrap interval over items of the difference
    delta_hi: float
    relative: float  # delta / baseline value (fraction)
    item_test: str  # "bootstrap", "McNemar" or "" (no items)
    p_items_holm: float
    p_seeds_holm: float
    detectable_items: float  # display units
    detectable_seeds: float
    seeds: int
    items: int


def test_rows(table: Table, metric: str | None = None) -> list[TestRow]:
    """Every non-baseline row that was tested, for ``metric`` (default: all metrics)."""
    by_method = {tuple(r.method.items()): r for r in table.rows}
    out = []
    for m in [metric] if metric else table.metrics:
        for row in table.rows:
            e = row.entries.get(m)
            if row.baseline is None or e is None:
                continue
            base = by_method.get(tuple(row.baseline.items()))
            b = base.entries.get(m) if base is not None else None
            if b is None:
                continue
            t = e.items_test
            delta = t.delta if t is not None else e.summary.mean - b.summary.mean
            base_value = b.summary.mean
            out.append(
                TestRow(
                    method=row.label,
                    metric=m,
                    delta=display(m, delta),
                    delta_lo=display(m, t.lo) if t else math.nan,
                    delta_hi=display(m, t.hi) if t else math.nan,
                    relative=delta / base_value if base_value else math.nan,
                    item_test=t.test if t else "",
                    p_items_holm=e.p_items_holm,
                    p_seeds_holm=e.p_holm,
                    detectable_items=display(m, t.mde) if t else math.nan,
                    detectable_seeds=display(m, e.mde_seeds),
                    seeds=t.seeds if t else len(row.seeds),
                    items=t.items if t else 0,
                )
            )
    return out


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _num(metric: str, value: float) -> str:
    """A value already in display units, to about three significant digits."""
    if not math.isfinite(value):
        return "–"
    return f"{value:.{decimals(value)}f}"


def power_line(table: Table) -> str:
    """One sentence: per column, the detectable difference by items / by seeds."""
    parts = []
    for m in table.metrics:
        p = table.power.get(m)
        if p is None or not (math.isfinite(p.items) or math.isfinite(p.seeds)):
            continue
        parts.append(f"{m} {_num(m, display(m, p.items))} / {_num(m, display(m, p.seeds))}")
    if not parts:
        return ""
    return f"{POWER_NOTE}: " + "; ".join(parts) + "."


HEADER = (
    "method",
    "Δ",
    "95% CI (items)",
    "Δ rel.",
    "test (seeds×items)",
    "p items",
    "p seeds",
    "detectable (items / seeds)",
)


def tests_intro(metric: str) -> str:
    return (
        f"Against the baseline, on {metric} (every metric: tests.csv): the difference with "
        "its 95% interval over test items, relative to the baseline, and p-values (Holm over "
        "the rows) of the paired test over items pooled across seeds and of the paired "
        "t-test over seeds."
    )


def tests_cells(table: Table) -> list[list[str]]:
    """The tests of the table's headline metric, one list of HEADER cells per row."""
    metric = table.headline
    if metric is None:
        return []
    out = []
    for r in test_rows(table, metric):
        ci = "–"
        if math.isfinite(r.delta_lo):
            ci = f"[{_num(metric, r.delta_lo)}, {_num(metric, r.delta_hi)}]"
        rel = f"{r.relative * 100:+.1f}%" if math.isfinite(r.relative) else "–"
        sign = "+" if r.delta > 0 else ""
        out.append(
            [
                r.method,
                f"{sign}{_num(metric, r.delta)}",
                ci,
                rel,
                f"{r.item_test or '–'} ({r.seeds}×{r.items})",
                _p(r.p_items_holm),
                _p(r.p_seeds_holm),
                f"{_num(metric, r.detectable_items)} / {_num(metric, r.detectable_seeds)}",
            ]
        )
    return out


def tests_markdown(table: Table) -> list[str]:
    """The tests of the headline metric as a Markdown table (empty without a baseline)."""
    cells = tests_cells(table)
    if not cells or table.headline is None:
        return []
    align = ["---"] + ["---:"] * 3 + ["---"] + ["---:"] * 3
    return [tests_intro(f"`{table.headline}`"), "", *pipe_table(HEADER, align, cells)]


def write_tests_csv(path: str | Path, tables: list[Table]) -> Path:
    """Every test of every table: one line per (task, method, metric)."""
    path = Path(path)
    fields = ["task", *TestRow.__dataclass_fields__]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for table in tables:
            for row in test_rows(table):
                writer.writerow({"task": table.task, **asdict(row)})
    return path
