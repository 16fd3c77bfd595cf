"""Compare two run folders cell by cell: what got better, worse, or newly fails.

Cells are matched by (task, method, scale, seed); each metric is compared over the seeds
both runs finished. A quality change counts as a regression only when it goes the wrong
way, is larger than the metric's tolerance (bench.metrics.METRICS) and is significant
(p < alpha): by the paired test over test items pooled across seeds
(``bench.report.item_stats``: bootstrap, McNemar for 0/1 metrics) where both runs wrote
per-item results, so that a one-seed run gates too; else by a paired t-test over seeds.

Cells are comparable when their config and data hashes agree; a changed task version (the
code changed) is what a regression gate is for, so such cells are compared and the row
says "code changed". Cells whose config or data differ are "not comparable"; they, and
cells of NEW missing from OLD, were not checked, and the command fails on them (naming them
and the command that refreshes the baseline) unless asked not to. A cell whose test items
differ from OLD's (an evaluation that dropped or added items) fails as "items differ".

Stored timings are shown as ratios (each run's throughput divided by its own matmul probe,
``env["probe_gflops"]``) but never gated: timings from two runs at different times on a
shared machine do not make a test. ``compare --against REF`` (``bench.against``) times both
versions interleaved and gates on those paired timings.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import registry
from bench.metrics import METRICS, TIMING_UNITS
from bench.metrics.weighted import ItemForm
from bench.report import item_stats
from bench.report.item_stats import ItemsDiffer
from bench.report.stats import shift_pvalue
from bench.store import Record, latest_records, read_items, stable_hash
from bench.tasks.base import get_task

BETTER, WORSE, SAME, NOT_SIGNIFICANT = "better", "worse", "same", "not significant"
NOT_COMPARABLE, NEWLY_FAILING, INFO = "not comparable", "newly failing", "info"
ITEMS_DIFFER = "items differ"
REGRESSION = 3  # exit status of a failed comparison (DESIGN.md: 0 ok, 1 failed cells, 2 usage)
FASTER, SLOWER = "faster", "slower"
ONLY_NEW, ONLY_OLD = "only in new", "only in old"


@dataclass
class Row:
    """One compared (task, method, metric)."""

    task: str
    method: str
    metric: str
    verdict: str
    old: float | None = None
    new: float | None = None
    delta: float | None = None  # new - old, in display units (speed: the ratio new/old)
    p: float | None = None
    seeds: int = 0
    note: str = ""


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)
    gate_speed: bool = False

    def unchecked(self) -> list[Row]:
        """Cells of NEW with no comparable cell in OLD: nothing checked them."""
        return [r for r in self.rows if r.verdict in (NOT_COMPARABLE, ONLY_NEW)]

    def regressions(self) -> list[Row]:
        gating = {WORSE, NEWLY_FAILING, ITEMS_DIFFER} | ({SLOWER} if self.gate_speed else set())
        return [r for r in self.rows if r.verdict in gating]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in self.rows:
            out[r.verdict] += 1
        return dict(out)


def identity(record: Record) -> tuple[str, str, str, int]:
    """What makes two records the same cell across runs (config excluded on purpose)."""
    return (record.task, method_label(record.method), record.scale, record.seed)


def method_label(method: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in method.items())


COMPARABILITY = ("config", "data")


def comparability(record: Record, ignore: tuple[str, ...] = ()) -> tuple[object, ...]:
    """Config hash and data hash: equal for cells that may be compared.

    ``ignore`` drops some of them, e.g. ("data",) after a change of how data is hashed."""
    parts = {"config": stable_hash(record.config), "data": record.env.get("data_hash")}
    return tuple(v for k, v in parts.items() if k not in ignore)


def compare_runs(
    new_dir: str | Path,
    old_dir: str | Path,
    alpha: float = 0.05,
    speed_tolerance: float = 0.25,
    ignore: tuple[str, ...] = (),
) -> Comparison:
    """Every (task, method, metric) present in both runs, with its verdict.

    ``ignore``: parts of comparability (COMPARABILITY) not to require equal."""
    unknown = sorted(set(ignore) - set(COMPARABILITY))
    if unknown:
        raise ValueError(
            f"cannot ignore {', '.join(unknown)}; choose from {', '.join(COMPARABILITY)}"
        )
    new = {identity(r): r for r in latest_records(new_dir)}
    old = {identity(r): r for r in latest_records(old_dir)}
    if not new:
        raise FileNotFoundError(f"no records in {new_dir}/records.jsonl")
    if not old:
        raise FileNotFoundError(f"no records in {old_dir}/records.jsonl")
    groups: dict[tuple[str, str, str], list[tuple[Record | None, Record | None]]] = defaultdict(
        list
    )
    for key in sorted(set(new) | set(old), key=str):
        groups[key[:3]].append((old.get(key), new.get(key)))
    runs = _Runs(Path(new_dir), Path(old_dir), alpha, speed_tolerance, ignore)
    result = Comparison()
    for (task, method, _scale), pairs in sorted(groups.items()):
        result.rows.extend(runs.compare_group(task, method, pairs))
    return result


@dataclass
class _Runs:
    """The two run folders and the options of one comparison."""

    new_dir: Path
    old_dir: Path
    alpha: float
    speed_tolerance: float
    ignore: tuple[str, ...]

    def compare_group(self, task, method, pairs) -> list[Row]:
        olds = [o for o, _ in pairs if o is not None]
        news = [n for _, n in pairs if n is not None]
        if not olds:
            return [Row(task, method, "-", ONLY_NEW, seeds=len(news))]
        if not news:
            return [Row(task, method, "-", ONLY_OLD, seeds=len(olds))]
        failing = [n for o, n in pairs if o and n and o.status == "ok" and n.status != "ok"]
        if failing:
            error = (failing[0].error or "").splitlines()[0] if failing[0].error else ""
            return [Row(task, method, "-", NEWLY_FAILING, seeds=len(failing), note=error)]
        both = [(o, n) for o, n in pairs if o and n and o.status == "ok" and n.status == "ok"]
        if not both:
            return []
        ignore = self.ignore
        if any(comparability(o, ignore) != comparability(n, ignore) for o, n in both):
            o, n = both[0]
            kept = [k for k in COMPARABILITY if k not in ignore]
            pairs_ = zip(kept, comparability(o, ignore), comparability(n, ignore), strict=True)
            what = [name for name, a, b in pairs_ if a != b]
            return [Row(task, method, "-", NOT_COMPARABLE, seeds=len(both), note=", ".join(what))]
        changed = any(o.env.get("task_version") != n.env.get("task_version") for o, n in both)
        rows = []
        items = self._items(task, both)
        metrics = sorted(set.intersection(*(set(o.metrics) & set(n.metrics) for o, n in both)))
        for metric in metrics:
            row = _quality_row(task, method, metric, both, self.alpha, items)
            if changed:
                row.note = "; ".join(x for x in ("code changed", row.note) if x)
            rows.append(row)
        timings = sorted(
            set.intersection(*(set(o.timing) & set(n.timing) for o, n in both)) & set(TIMING_UNITS)
        )
        for key in timings:
            speed = _speed_row(task, method, key, both, self.speed_tolerance)
            if speed is not None:
                rows.append(speed)
        return rows

    def _items(self, task_name: str, both) -> _ItemPairs | None:
        """The per-item results of both runs' cells, with the task's item forms (None
        unless every cell of both runs wrote them)."""
        try:
            task = get_task(task_name)
        except registry.UnknownNameError:
            return None
        new = {n.seed: read_items(self.new_dir, n.cell_key) for _, n in both}
        old = {o.seed: read_items(self.old_dir, o.cell_key) for o, _ in both}
        if not all(new.values()) or not all(old.values()):
            return None
        return _ItemPairs(task.item_forms(both[0][1].config), new, old)


@dataclass
class _ItemPairs:
    forms: dict[str, ItemForm]
    new: dict[int, dict]  # seed -> items
    old: dict[int, dict]

    def test(self, metric: str) -> item_stats.ItemTest | None:
        """Paired test over items of new − old (ItemsDiffer when the items changed)."""
        form = self.forms.get(metric)
        if form is None:
            return None
        new, old = item_stats.replicates(form, self.new), item_stats.replicates(form, self.old)
        if new is None or old is None:
            return None
        return item_stats.paired_test(form, new, old, self.new, self.old)


def _quality_row(task, method, metric, both, alpha, items: _ItemPairs | None = None) -> Row:
    spec = METRICS.get(metric)
    old = np.array([o.metrics[metric] for o, _ in both], dtype=float)
    new = np.array([n.metrics[metric] for _, n in both], dtype=float)
    scale = spec.scale if spec else 1.0
    delta = float(new.mean() - old.mean()) * scale
    row = Row(task, method, metric, SAME, float(old.mean()) * scale, float(new.mean()) * scale)
    row.delta, row.seeds = delta, len(both)
    if spec is None or not spec.ranked or not (np.isfinite(old).all() and np.isfinite(new).all()):
        row.verdict = INFO
        return row
    try:
        test = items.test(metric) if items is not None else None
    except ItemsDiffer as exc:
        row.verdict, row.note = ITEMS_DIFFER, str(exc)
        return row
    if abs(delta) <= spec.tolerance:
        return row
    improved = (delta > 0) == spec.higher_is_better
    if test is not None:
        row.p = test.p
        seed_p = shift_pvalue(new - old)
        row.note = f"paired {test.test} over {test.seeds}×{test.items} items" + (
            f"; seeds p = {seed_p:.3g}" if seed_p is not None else ""
        )
    else:
        row.p = shift_pvalue(new - old)
    if row.p is None:
        row.verdict, row.note = NOT_SIGNIFICANT, "one seed and no items: no paired test"
    elif row.p < alpha:
        row.verdict = BETTER if improved else WORSE
    else:
        row.verdict = NOT_SIGNIFICANT
    return row


# counts and fractions that do not scale with the machine's speed: compared as they are
NOT_PROBE_NORMALISED = frozenset(
    {"flops_per_sample", "flops_per_audio_second", "peak_mem_mb", "mfu"}
)


def _speed_row(task, method, key, both, tolerance) -> Row | None:
    spec = TIMING_UNITS[key]
    ratios = []
    for o, n in both:
        a, b = o.timing.get(key), n.timing.get(key)
        pa, pb = o.env.get("probe_gflops"), n.env.get("probe_gflops")
        if key in NOT_PROBE_NORMALISED:
            pa = pb = 1.0
        if not a or not b or not pa or not pb or not all(map(math.isfinite, (a, b, pa, pb))):
            continue
        # per unit of probe speed: throughput / probe, or time x probe
        norm_a, norm_b = (a / pa, b / pb) if spec.higher_is_better else (a * pa, b * pb)
        ratios.append(norm_b / norm_a if spec.higher_is_better else norm_a / norm_b)
    if not ratios:
        return None
    ratio = float(np.exp(np.mean(np.log(ratios))))  # > 1: new is faster
    verdict = FASTER if ratio > 1 + tolerance else SLOWER if ratio < 1 - tolerance else SAME
    note = (
        "ratio new/old"
        if key in NOT_PROBE_NORMALISED
        else "speed ratio new/old, normalised by each run's matmul probe"
    ) + "; stored timings: not gated"
    return Row(task, method, key, verdict, delta=ratio, seeds=len(ratios), note=note)


def render(comparison: Comparison, new_dir, old_dir, full: bool = True) -> str:
    """Markdown: a summary line, then the table (all rows, or only the notable ones)."""
    counts = comparison.counts()
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    lines = [f"# Comparison: {new_dir} against {old_dir}", "", f"Rows: {summary}.", ""]
    regressions = comparison.regressions()
    lines.append(f"**{len(regressions)} regression(s).**" if regressions else "**No regression.**")
    unchecked = comparison.unchecked()
    if unchecked:
        lines += [
            "",
            f"**{len(unchecked)} cell(s) of the new run were not checked** (no comparable cell).",
        ]
    lines.append("")
    quiet = {SAME, INFO}
    rows = [r for r in comparison.rows if full or r.verdict not in quiet]
    if rows:
        lines += [
            "| task | method | metric | old | new | change | p | seeds | verdict |",
            "|---|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in rows:
            change = _fmt(r.delta, signed=r.old is not None)
            if r.old is None and r.delta is not None:
                change = f"×{r.delta:.2f}"
            verdict = f"**{r.verdict}**" if r in regressions else r.verdict
            note = f" ({r.note})" if r.note else ""
            lines.append(
                f"| {r.task} | {r.method} | {r.metric} | {_fmt(r.old)} | {_fmt(r.new)} | "
                f"{change} | {_fmt(r.p)} | {r.seeds} | {verdict}{note} |"
            )
    return "\n".join(lines) + "\n"


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return ""
    return f"{x:+.3g}" if signed else f"{x:.3g}"


def write(comparison: Comparison, new_dir, old_dir) -> Path:
    """compare.md and compare.json in the new run folder."""
    new_dir = Path(new_dir)
    path = new_dir / "compare.md"
    path.write_text(render(comparison, new_dir, old_dir), encoding="utf-8")
    rows = [r.__dict__ for r in comparison.rows]
    (new_dir / "compare.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path
