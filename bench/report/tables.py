"""Aggregate records into per-task tables: mean ± Student-t 95% interval over seeds (n per
row) and, where the cells wrote per-item results, the bootstrap interval over test items;
deterministic cells marked, the best and its ties marked; each row tested against its
baseline row over items (paired bootstrap or McNemar) and over seeds (paired t-test),
Holm-corrected per column; the smallest difference each column could detect stated."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import registry
from bench.metrics import spec
from bench.report import item_stats
from bench.report.item_stats import ItemsDiffer, ItemTest, Replicates
from bench.report.stats import Summary, holm, mean_ci, paired_pvalue
from bench.store import Record

SIGNIFICANCE = 0.05
DETERMINISTIC = "(det.)"  # identical over the seeds: no interval, no test


NOT_APPLICABLE = "-"  # a method axis that does not apply to the row (e.g. no quantizer)


def method_label(method: dict[str, str]) -> str:
    return ", ".join(f"{family}={name}" for family, name in method.items())


def display_label(method: dict[str, str]) -> str:
    """A row label for readers: a method with a declared display name shows it (e.g.
    "Temperature scaling"), any other axis shows ``field=value``, joined by " · "; axes that
    do not apply ("-") are left out unless every axis is "-"."""
    parts = [
        registry.display_name(k, v) if registry.has_display_name(k, v) else f"{k}={v}"
        for k, v in method.items()
        if v != NOT_APPLICABLE
    ]
    return " · ".join(parts or (f"{k}={v}" for k, v in method.items()))


@dataclass
class Entry:
    summary: Summary  # over seeds
    pvalue: float = math.nan  # paired t-test over seeds against the row's baseline
    p_holm: float = math.nan  # the same, Holm-adjusted over the rows of the column
    best: bool = False  # the best mean of its column among the rows sharing a baseline
    tied: bool = False  # not the best, but tied with it (see TIE_RULE)
    item_lo: float = math.nan  # bootstrap 95% interval over test items of the seed mean
    item_hi: float = math.nan
    items_test: ItemTest | None = None  # paired test over items against the baseline
    p_items_holm: float = math.nan
    mde_seeds: float = math.nan  # smallest difference the seed test detects (80% power)

    @property
    def bold(self) -> bool:
        return self.best or self.tied

    @property
    def item_half_width(self) -> float:
        return (self.item_hi - self.item_lo) / 2

    @property
    def marks(self) -> str:
        """``†`` significant against the baseline after Holm by the paired test over test
        items (these trained models, on this test set); ``‡`` by the paired t-test over
        seeds (the training procedure, across seeds). Both, one, or none."""
        out = "†" if self.p_items_holm < SIGNIFICANCE else ""
        return out + ("‡" if self.p_holm < SIGNIFICANCE else "")


@dataclass
class Row:
    method: dict[str, str]
    seeds: list[int]
    entries: dict[str, Entry] = field(default_factory=dict)
    is_baseline: bool = False
    baseline: dict[str, str] | None = None  # the row it is tested against

    @property
    def label(self) -> str:
        return method_label(self.method)

    @property
    def display(self) -> str:
        return display_label(self.method)


@dataclass(frozen=True)
class Power:
    """The smallest difference from the baseline a column could detect (α = 0.05, 80%
    power), median over the rows tested: by the test over items and over seeds."""

    items: float
    seeds: float


@dataclass
class Table:
    task: str
    title: str
    metrics: list[str]
    rows: list[Row]
    baseline_note: str = ""
    headline: str | None = None
    power: dict[str, Power] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. test items that differ


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


@dataclass(frozen=True)
class EntryParts:
    """An entry formatted in display units, every number to the mean's precision; the
    renderers join these parts each in their own markup."""

    value: str  # the mean, or "n/a"
    seed_half_width: str  # "" when there is none (one seed, deterministic, NaN)
    deterministic: bool
    item_half_width: str  # "" without per-item results


def entry_parts(metric: str, entry: Entry) -> EntryParts:
    s = entry.summary
    digits = decimals(display(metric, s.mean)) if math.isfinite(s.mean) else None
    seed = ""
    if not s.deterministic and s.n >= 2 and math.isfinite(s.half_width):
        seed = fmt(metric, s.half_width, digits)
    items = ""
    if math.isfinite(entry.item_half_width):
        items = fmt(metric, entry.item_half_width, digits)
    return EntryParts(fmt(metric, s.mean, digits), seed, s.deterministic, items)


def fmt_entry(metric: str, entry: Entry) -> str:
    """``mean ± half-CI`` in display units, both to the mean's precision."""
    p = entry_parts(metric, entry)
    text = p.value + (f" {DETERMINISTIC}" if p.deterministic else "")
    text += f" ± {p.seed_half_width}" if p.seed_half_width else ""
    return text + (f" [± {p.item_half_width}]" if p.item_half_width else "")


ItemsOf = Callable[[Record], dict | None]  # a record's per-item results, or None


def build_table(task, records: list[Record], items_of: ItemsOf | None = None) -> Table:
    """One table: rows are method combinations, columns are the task's table metrics.

    ``items_of`` loads a record's per-item results (None: none were written); without it
    the table has only the statistics over seeds."""
    ok = [r for r in records if r.status == "ok"]
    by_method: dict[tuple, dict[int, Record]] = defaultdict(dict)
    for rec in ok:
        by_method[tuple(rec.method.items())][rec.seed] = rec
    metrics = [m for m in task.table_metrics if any(m in r.metrics for r in ok)]
    items = _load_items(by_method, items_of)
    forms = task.item_forms(ok[0].config) if ok and items else {}
    replicas: dict[tuple[tuple, str], Replicates | None] = {}
    rows: list[Row] = []
    notes: list[str] = []
    for key, by_seed in by_method.items():
        method = dict(key)
        seeds = sorted(by_seed)
        row = Row(
            method=method,
            seeds=seeds,
            is_baseline=task.baseline_of(method) is None,
            baseline=task.baseline_of(method),
        )
        base_key = tuple((task.baseline_of(method) or {}).items())
        base = by_method.get(base_key)
        for metric in metrics:
            values = [by_seed[s].metrics.get(metric) for s in seeds]
            entry = Entry(mean_ci(values))
            if metric in forms and key in items:
                rep = _replicates(replicas, key, metric, forms[metric], items[key])
                if rep is not None:
                    entry.item_lo, entry.item_hi = item_stats.interval(rep.mean(seeds)[1])
            if base is not None:
                common = [s for s in seeds if s in base]
                new = [by_seed[s].metrics.get(metric) for s in common]
                old = [base[s].metrics.get(metric) for s in common]
                entry.pvalue = paired_pvalue(new, old)
                entry.mde_seeds = item_stats.seed_mde(
                    [math.nan if v is None else v for v in new],
                    [math.nan if v is None else v for v in old],
                )
                if metric in forms and key in items and base_key in items:
                    rep = _replicates(replicas, key, metric, forms[metric], items[key])
                    old_rep = _replicates(
                        replicas, base_key, metric, forms[metric], items[base_key]
                    )
                    if rep is not None and old_rep is not None:
                        try:
                            entry.items_test = item_stats.paired_test(
                                forms[metric], rep, old_rep, items[key], items[base_key]
                            )
                        except ItemsDiffer as exc:
                            notes.append(
                                f"{method_label(method)}, {metric}: no test over "
                                f"items, the test items differ from the baseline's "
                                f"({exc})"
                            )
            row.entries[metric] = entry
        rows.append(row)
    power: dict[str, Power] = {}
    for metric in metrics:  # one family per column: every row's test against its baseline
        entries = [r.entries[metric] for r in rows if metric in r.entries]
        for entry, adjusted in zip(entries, holm([e.pvalue for e in entries]), strict=True):
            entry.p_holm = adjusted
        tested = [e for e in entries if e.items_test is not None]
        p_items = holm([e.items_test.p for e in tested if e.items_test is not None])
        for entry, adjusted in zip(tested, p_items, strict=True):
            entry.p_items_holm = adjusted
        power[metric] = Power(
            _median([e.items_test.mde for e in tested if e.items_test is not None]),
            _median([e.mde_seeds for e in entries]),
        )
    _mark_best(rows, metrics, task)

    def tie_pvalues(row: Row, top: Row, metric: str) -> list[float]:
        """Two-sided p-values of ``row`` against ``top``: over items, over seeds."""
        out = []
        key, top_key = tuple(row.method.items()), tuple(top.method.items())
        if metric in forms and key in items and top_key in items:
            a = _replicates(replicas, key, metric, forms[metric], items[key])
            b = _replicates(replicas, top_key, metric, forms[metric], items[top_key])
            if a is not None and b is not None:
                try:
                    test = item_stats.paired_test(forms[metric], a, b, items[key], items[top_key])
                except ItemsDiffer:
                    test = None
                out.append(test.p if test is not None else math.nan)
        common = [s for s in row.seeds if s in top.seeds]
        new = [by_method[key][s].metrics.get(metric) for s in common]
        old = [by_method[top_key][s].metrics.get(metric) for s in common]
        return out + [paired_pvalue(new, old)]

    _mark_ties(rows, metrics, task, tie_pvalues)
    note = ""
    if task.baseline:
        note = "baseline: " + ", ".join(f"{k}={v}" for k, v in task.baseline.items())
    return Table(
        task=task.name,
        title=task.title or task.name,
        metrics=metrics,
        rows=rows,
        baseline_note=note,
        headline=task.headline if task.headline in metrics else (metrics or [None])[0],
        power=power,
        notes=notes,
    )


def _load_items(by_method, items_of: ItemsOf | None) -> dict[tuple, dict[int, dict]]:
    """method key -> seed -> items, for the methods whose every seed wrote items."""
    if items_of is None:
        return {}
    out: dict[tuple, dict[int, dict]] = {}
    for key, by_seed in by_method.items():
        loaded = {seed: items_of(rec) for seed, rec in by_seed.items()}
        complete = {seed: v for seed, v in loaded.items() if v is not None}
        if len(complete) == len(loaded):
            out[key] = complete
    return out


def _replicates(cache, key, metric, form, items) -> Replicates | None:
    if (key, metric) not in cache:
        cache[key, metric] = item_stats.replicates(form, items)
    return cache[key, metric]


def _median(values: list[float]) -> float:
    kept = [v for v in values if math.isfinite(v)]
    return statistics.median(kept) if kept else math.nan


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


TIE_RULE = (
    "bold: the best mean of the column among the rows that share a baseline, and every mean "
    "tied with it: equal at the printed precision, or no paired two-sided test available (over "
    f"test items, over seeds) tells it from the best at p < {SIGNIFICANCE}, uncorrected"
)


def _mark_ties(
    rows: list[Row], metrics: list[str], task, pvalues: Callable[[Row, Row, str], list[float]]
) -> None:
    """Mark ``tied`` every row whose mean prints as the best's, or that no available paired
    test (``pvalues(row, best_row, metric)``, NaN: no test) separates from the best; a row
    with no test at all is tied only by the printed precision."""
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        groups[tuple((task.baseline_of(row.method) or row.method).items())].append(row)
    for group in groups.values():
        for metric in metrics:
            tops = [r for r in group if metric in r.entries and r.entries[metric].best]
            if not tops:
                continue
            top = tops[0]
            top_text = entry_parts(metric, top.entries[metric]).value
            for row in group:
                entry = row.entries.get(metric)
                if entry is None or entry.best or not math.isfinite(entry.summary.mean):
                    continue
                digits = decimals(display(metric, top.entries[metric].summary.mean))
                if fmt(metric, entry.summary.mean, digits) == top_text:
                    entry.tied = True
                    continue
                ps = [p for p in pvalues(row, top, metric) if math.isfinite(p)]
                entry.tied = bool(ps) and all(p >= SIGNIFICANCE for p in ps)


def timing_rows(
    records: list[Record], keys: tuple[str, ...], label: Callable[[dict], str] = method_label
) -> list[tuple[str, dict[str, float]]]:
    """Median over seeds of each timing key, per method. A row with an MFU above 100% on
    any seed is marked invalid and prints no number: its FLOP count or its clock is wrong,
    so none of its timings can be trusted."""
    grouped: dict[tuple, list[Record]] = defaultdict(list)
    for rec in records:
        if rec.status == "ok":
            grouped[tuple(rec.method.items())].append(rec)
    out: list[tuple[str, dict[str, float]]] = []
    for key, recs in grouped.items():
        mfu = max((r.timing.get("mfu") or 0.0 for r in recs), default=0.0)
        if mfu > 1:
            reason = f"invalid: MFU {mfu:.0%} > 100%, the FLOP count or the clock is wrong"
            out.append((f"{label(dict(key))} ({reason})", {}))
            continue
        values = {}
        for k in keys:
            vals = sorted(v for r in recs if (v := r.timing.get(k)) is not None)
            if vals:
                values[k] = vals[len(vals) // 2]
        out.append((label(dict(key)), values))
    return out
