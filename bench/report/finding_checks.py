"""How each kind of finding (``bench.report.findings``) is evaluated on a run's records and
items, with the report's own statistics: ``item_stats.paired_test`` (bootstrap/McNemar over
test items), ``stats.paired_pvalue``/``mean_ci``/``holm`` (over seeds), ``item_stats``
detectable effects, and ``zoo_figures.changes`` (per-member harm, Wilson share)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from bench import registry, tuning
from bench.metrics import spec
from bench.report import item_stats
from bench.report.findings import (
    CLOSE_POINTS,
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_RUN,
    REPRODUCED,
    Finding,
    Result,
    verdict_of,
)
from bench.report.item_stats import ItemsDiffer, Replicates
from bench.report.stats import holm, mean_ci, paired_pvalue
from bench.store import Record, latest_records, read_items
from bench.tasks.base import get_task

Cells = dict[int, Record]  # seed -> record of one method
Match = Mapping[str, "str | tuple[str, ...]"]


class RunData:
    """A run folder's ok records, grouped by task and method, and their items (cached)."""

    def __init__(self, run_dir: Path, records: list[Record] | None = None) -> None:
        self.dir = run_dir
        recs = latest_records(run_dir) if records is None else records
        # tuning trials are one-seed searches, not rows: findings read defaults or tuned rows
        self.records = [r for r in recs if r.status == "ok" and not tuning.is_trial(r.method)]
        self._items: dict[str, dict | None] = {}

    def methods(self, task: str, match: Match) -> dict[tuple, Cells]:
        """Every method of ``task`` whose axes take the matched values: key -> seed -> record."""
        out: dict[tuple, Cells] = defaultdict(dict)
        for r in self.records:
            if r.task == task and all(
                r.method.get(k) in (v if isinstance(v, tuple) else (v,)) for k, v in match.items()
            ):
                out[tuple(r.method.items())][r.seed] = r
        return dict(out)

    def axis_values(self, task: str, axis: str) -> list[str]:
        """The values of ``axis`` in the run, in the task's declared order when it has one."""
        present = {r.method[axis] for r in self.records if r.task == task and axis in r.method}
        try:
            order = list(get_task(task).axes.get(axis, ()))
        except registry.UnknownNameError:
            order = []
        return [v for v in order if v in present] + sorted(present - set(order))

    def items(self, rec: Record) -> dict | None:
        if rec.cell_key not in self._items:
            self._items[rec.cell_key] = read_items(self.dir, rec.cell_key) or None
        return self._items[rec.cell_key]

    def seed_items(self, cells: Cells) -> dict[int, dict] | None:
        loaded = {s: self.items(r) for s, r in cells.items()}
        if any(v is None for v in loaded.values()):
            return None
        return {s: v for s, v in loaded.items() if v is not None}


@dataclass(frozen=True)
class Stat:
    """new − old in the metric's own units, with its interval, p, detectable effect, n."""

    effect: float
    lo: float
    hi: float
    p: float
    mde: float
    n: str
    test: str


def mean_of(cells: Cells, metric: str) -> float:
    vals = [r.metrics.get(metric) for r in cells.values()]
    kept = [float(v) for v in vals if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else math.nan


def best(methods: dict[tuple, Cells], metric: str) -> tuple[tuple, Cells] | None:
    """The method with the best mean of ``metric`` (by its direction)."""
    scored = [(mean_of(c, metric), k, c) for k, c in methods.items()]
    scored = [s for s in scored if math.isfinite(s[0])]
    if not scored:
        return None
    s = spec(metric)
    sign = 1.0 if s is None or s.higher_is_better else -1.0
    _, key, cells = max(scored, key=lambda t: sign * t[0])
    return key, cells


def seed_stat(new: list[float], old: list[float], what: str = "") -> Stat:
    """Paired t-test over seeds; interval: Student-t of the mean paired difference."""
    d = [a - b for a, b in zip(new, old, strict=True)]
    summary = mean_ci(list[float | None](d))
    lo, hi = (summary.lo, summary.hi) if summary.n >= 2 else (math.nan, math.nan)
    p = paired_pvalue(list(new), list(old))
    mde = item_stats.seed_mde(new, old)
    test = f"paired t-test over seeds{what}" + (" (needs ≥ 2 seeds)" if summary.n < 2 else "")
    return Stat(summary.mean, lo, hi, p, mde, plural(summary.n, "seed"), test)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def compare(run: RunData, task: str, metric: str, new: Cells, old: Cells) -> Stat | None:
    """new − old: over test items where both wrote them, else over seeds (None: no seed in
    common)."""
    seeds = sorted(set(new) & set(old))
    if not seeds:
        return None
    new, old = {s: new[s] for s in seeds}, {s: old[s] for s in seeds}
    form = get_task(task).item_forms(new[seeds[0]].config).get(metric)
    new_items, old_items = run.seed_items(new), run.seed_items(old)
    if form is not None and new_items and old_items:
        a, b = item_stats.replicates(form, new_items), item_stats.replicates(form, old_items)
        if a is not None and b is not None:
            try:
                t = item_stats.paired_test(form, a, b, new_items, old_items)
            except ItemsDiffer:
                t = None
            if t is not None:
                n = f"{plural(t.seeds, 'seed')} × {t.items} items"
                return Stat(t.delta, t.lo, t.hi, t.p, t.mde, n, f"paired {t.test} over items")
    values = [(new[s].metrics.get(metric), old[s].metrics.get(metric)) for s in seeds]
    pairs = [(float(x), float(y)) for x, y in values if x is not None and y is not None]
    if not pairs:
        return None
    return seed_stat([x for x, _ in pairs], [y for _, y in pairs])


def result(finding: Finding, stat: Stat, expected: int, notes: list[str]) -> Result:
    s = spec(finding.metric)
    scale, unit = (s.scale, s.unit) if s else (1.0, "")
    unit = "points" if unit == "%" else unit
    return Result(
        finding,
        verdict_of(stat.effect, stat.p, expected),
        stat.effect * scale,
        stat.lo * scale,
        stat.hi * scale,
        stat.p,
        stat.n,
        stat.mde * scale,
        unit,
        stat.test,
        notes,
    )


def not_run(finding: Finding, why: str) -> Result:
    return Result(finding, NOT_RUN, notes=[why])


def resolve(run: RunData, finding: Finding, match: Match) -> dict[str, str | tuple[str, ...]]:
    """Replace "<lowest>"/"<highest>" by the axis's smallest/largest value in the run."""
    out: dict[str, str | tuple[str, ...]] = {}
    for k, v in match.items():
        if v in ("<lowest>", "<highest>"):
            values = run.axis_values(finding.task, k)
            out[k] = (values[0] if v == "<lowest>" else values[-1]) if values else "?"
        else:
            out[k] = v
    return out


def label(key: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in key)


def check_paired(f: Finding, run: RunData) -> Result:
    picked = []
    for match in (resolve(run, f, f.new), resolve(run, f, f.old)):
        chosen = best(run.methods(f.task, match), f.metric)
        if chosen is None:
            return not_run(f, f"no `{f.task}` rows with {label(tuple(match.items()))}")
        picked.append(chosen)
    (new_key, new), (old_key, old) = picked
    stat = compare(run, f.task, f.metric, new, old)
    if stat is None:
        return not_run(f, f"{label(new_key)} and {label(old_key)} share no seed")
    return result(f, stat, f.expected, [f"{label(new_key)} − {label(old_key)}"])


def check_interaction(f: Finding, run: RunData) -> Result:
    """gain(lowest) − gain(highest) of an axis, gain = old − new, paired over the same test
    items (one bootstrap draw per item set covers the four cells), else over seeds."""
    values = run.axis_values(f.task, "labeled")
    if len(values) < 2:
        return not_run(f, f"needs two `labeled` values of `{f.task}`, the run has {values}")
    cells = {}
    for lab in (values[0], values[-1]):
        for side, match in (("new", f.new), ("old", f.old)):
            found = best(run.methods(f.task, {**match, "labeled": lab}), f.metric)
            if found is None:
                return not_run(f, f"no `{f.task}` row {label(tuple(match.items()))} at {lab}")
            cells[side, lab] = found[1]
    seeds = sorted(set.intersection(*(set(c) for c in cells.values())))
    if not seeds:
        return not_run(f, "the four cells share no seed")
    cells = {k: {s: c[s] for s in seeds} for k, c in cells.items()}
    low, high = values[0], values[-1]
    stat = _interaction_items(f, run, cells, low, high)
    if stat is None:  # over seeds: the per-seed difference of gains against 0

        def gain(lab: str) -> list[float]:
            old, new = cells["old", lab], cells["new", lab]
            return [float(old[s].metrics[f.metric] - new[s].metrics[f.metric]) for s in seeds]

        diff = [a - b for a, b in zip(gain(low), gain(high), strict=True)]
        stat = seed_stat(diff, [0.0] * len(seeds))
    return result(f, stat, f.expected, [f"labeled {low} vs {high}"])


def _interaction_items(f: Finding, run: RunData, cells, low: str, high: str) -> Stat | None:
    first = next(iter(cells["new", low].values()))
    form = get_task(f.task).item_forms(first.config).get(f.metric)
    items = {k: run.seed_items(c) for k, c in cells.items()}
    if form is None or any(v is None for v in items.values()):
        return None
    reps: dict[tuple[str, str], Replicates] = {}
    for k, v in items.items():
        rep = item_stats.replicates(form, v) if v is not None else None
        if rep is None:
            return None
        reps[k] = rep
    gains = [_gain(reps["old", lab], reps["new", lab]) for lab in (low, high)]
    new_items, old_items = items["new", low], items["new", high]
    if gains[0] is None or gains[1] is None or new_items is None or old_items is None:
        return None
    t = item_stats.paired_test(form, gains[0], gains[1], new_items, old_items)
    if t is None:
        return None
    n = f"{plural(t.seeds, 'seed')} × {t.items} items"
    return Stat(t.delta, t.lo, t.hi, t.p, t.mde, n, "paired bootstrap over items")


def _gain(old: Replicates, new: Replicates) -> Replicates | None:
    """old − new per seed, as replicates (None: a seed's item sets differ)."""
    seeds = sorted(set(old.point) & set(new.point))
    if any(old.keys[s] != new.keys[s] for s in seeds) or not seeds:
        return None
    return Replicates(
        {s: old.point[s] - new.point[s] for s in seeds},
        {s: old.boot[s] - new.boot[s] for s in seeds},
        {s: old.keys[s] for s in seeds},
    )


def check_spread(f: Finding, run: RunData) -> Result:
    methods = run.methods(f.task, f.new)
    means = {k: mean_of(c, f.metric) for k, c in methods.items()}
    keys = [k for k in sorted(methods) if math.isfinite(means[k])]
    if len(keys) < 2:
        return not_run(f, f"fewer than two trained losses in `{f.task}`")
    tests: dict[tuple, Stat] = {}
    for a, b in combinations(keys, 2):
        stat = compare(run, f.task, f.metric, methods[a], methods[b])
        if stat is not None:
            tests[a, b] = stat
    s = spec(f.metric)
    scale = s.scale if s else 1.0
    top = max(keys, key=lambda k: means[k])
    bottom = min((k for k in keys if k != top), key=lambda k: means[k])
    extreme = tests.get((top, bottom)) or tests.get((bottom, top))
    if extreme is None:
        return not_run(f, "the losses share no seed")
    if (bottom, top) in tests:  # oriented best − worst
        e = extreme
        extreme = Stat(-e.effect, -e.hi, -e.lo, e.p, e.mde, e.n, e.test)
    adjusted = dict(zip(tests, holm([t.p for t in tests.values()]), strict=True))
    differ = [k for k, p in adjusted.items() if p < 0.05]
    large = [k for k in differ if abs(tests[k].effect) * scale >= CLOSE_POINTS]
    within = -CLOSE_POINTS < extreme.lo * scale and extreme.hi * scale < CLOSE_POINTS
    verdict = CONTRADICTED if large else (REPRODUCED if not differ and within else INCONCLUSIVE)
    notes = [
        f"{len(keys)} losses; best {label(top)}, worst {label(bottom)}; "
        f"{len(differ)} of {len(tests)} pairs differ after Holm"
    ]
    res = result(f, extreme, +1, notes)
    res.verdict, res.p = verdict, min(adjusted.values())
    res.test = extreme.test + " (p: smallest Holm-adjusted over all pairs)"
    return res


CHECKS: dict[str, Callable[[Finding, RunData], Result]] = {
    "paired": check_paired,
    "interaction": check_interaction,
    "spread": check_spread,
}
