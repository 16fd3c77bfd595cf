"""Findings read from the records' curves (``bench.report.findings``): the zoo's per-member
harm (``paired_<metric>`` curves, via ``zoo_figures.changes``), G2P's error by output
position, and the updates a metric-learning loss needs to converge; the tests over seeds
and the Holm correction are ``bench.report.stats``'s."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats as sps

from bench.report import item_stats, zoo_figures
from bench.report.finding_checks import RunData, best, label, not_run, result, seed_stat
from bench.report.findings import CONTRADICTED, INCONCLUSIVE, REPRODUCED, Finding, Result
from bench.report.stats import holm
from bench.store import Record


def check_harm(f: Finding, run: RunData) -> Result:
    records = [r for r in run.records if r.task == f.task]
    if not records:
        return not_run(f, f"no `{f.task}` records")
    calibrator = str(f.new["calibrator"])
    changes = {m: zoo_figures.changes(records, calibrator, m) for m in ("ece", "auroc")}
    if not any(changes.values()):
        return not_run(f, f"no `paired_<metric>` curves in the `{f.task}` records (re-run it)")
    members = sorted({c.member for ch in changes.values() for c in ch})
    harmed = {c.member for ch in changes.values() for c in ch if c.harmed}
    share = zoo_figures.wilson(len(harmed), len(members))
    pairs = [(m, c) for m, ch in changes.items() for c in ch]
    se = [(c.hi - c.lo) / (2 * zoo_figures.Z95) for _, c in pairs]
    z = [
        c.improvement / s if s > 0 else math.copysign(math.inf, c.improvement)
        for (_, c), s in zip(pairs, se, strict=True)
    ]
    p_harm = holm([float(2 * sps.norm.sf(abs(v))) if v < 0 else 1.0 for v in z])
    p_gain = holm([float(2 * sps.norm.sf(abs(v))) if v > 0 else 1.0 for v in z])
    sig = [pairs[i] for i, p in enumerate(p_harm) if p < 0.05]
    if sig:
        verdict = REPRODUCED
    elif all(p < 0.05 for p in p_gain):
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
    mdes = [item_stats.minimum_detectable(s) * 100 for s in se if math.isfinite(s)]
    notes = [
        "; ".join(
            h for h in zoo_figures.harm_phrases(records, calibrator) if h.split()[0] in changes
        ),
        f"{len(sig)} (member, metric) pairs significantly harmed after Holm"
        + (": " + ", ".join(f"{c.member} {m}" for m, c in sig[:4]) if sig else ""),
    ]
    return Result(
        f,
        verdict,
        share.value,
        share.lo,
        share.hi,
        min(p_harm) if p_harm else math.nan,
        f"{len(members)} members",
        float(np.median(mdes)) if mdes else math.nan,
        "share",
        "z over each member's paired bootstrap interval, Holm",
        notes,
        "points per member (median)",
    )


def later_error(rec: Record, positions: int) -> float:
    """Error rate over reference positions ≥ ⌈positions/2⌉ (count-weighted)."""
    err = rec.curves.get("position_error") or []
    cnt = rec.curves.get("position_count") or []
    start = math.ceil(positions / 2)
    num = sum((e or 0.0) * n for e, n in list(zip(err, cnt, strict=False))[start:positions])
    den = sum(cnt[start:positions])
    return num / den if den else math.nan


def check_positions(f: Finding, run: RunData) -> Result:
    picked = []
    for match in (f.new, f.old):
        found = best(run.methods(f.task, match), "test_per_greedy")
        if found is None:
            return not_run(f, f"no `{f.task}` rows with {label(tuple(match.items()))}")
        picked.append(found[1])
    new, old = picked
    seeds = sorted(set(new) & set(old))
    if not seeds or not old[seeds[0]].curves.get("position_count"):
        return not_run(f, "no common seed with `position_error`/`position_count` curves")
    positions = sum(1 for n in old[seeds[0]].curves["position_count"] if n)
    a = [later_error(new[s], positions) for s in seeds]
    b = [later_error(old[s], positions) for s in seeds]
    stat = seed_stat(a, b)
    notes = [f"positions {math.ceil(positions / 2) + 1}–{positions}"]
    res = result(f, stat, f.expected, notes)
    res.effect, res.lo, res.hi, res.mde = (
        100 * v for v in (stat.effect, stat.lo, stat.hi, stat.mde)
    )
    res.unit = "points"
    return res


def updates_to(rec: Record, fraction: float = 0.9) -> float:
    """The first update at which the validation curve reaches ``fraction`` of its last value."""
    steps, values = rec.curves.get("step") or [], rec.curves.get("valid_recall_at_1") or []
    if not values or values[-1] is None:
        return math.nan
    target = fraction * values[-1]
    return next(
        (float(s) for s, v in zip(steps, values, strict=False) if v is not None and v >= target),
        math.nan,
    )


def check_convergence(f: Finding, run: RunData) -> Result:
    groups = [run.methods(f.task, m) for m in (f.new, f.old)]
    if not all(groups):
        return not_run(f, f"needs proxy and pair losses in `{f.task}`")
    seeds = sorted(set.intersection(*(set(c) for g in groups for c in g.values())))
    if not seeds:
        return not_run(f, "the losses share no seed")
    per_seed = [
        [float(np.mean([updates_to(c[s]) for c in g.values()])) for s in seeds] for g in groups
    ]
    stat = seed_stat(per_seed[0], per_seed[1])
    proxy, pair = (float(np.mean(v)) for v in per_seed)
    notes = [f"proxy losses {proxy:.0f} updates, pair losses {pair:.0f} (mean over seeds)"]
    first = min(
        min(r.curves.get("step") or [math.inf])
        for g in groups
        for c in g.values()
        for r in c.values()
    )
    if max(proxy, pair) <= first:
        notes.append("saturated: every loss is at 90% of its final value at the first evaluation")
    res = result(f, stat, f.expected, notes)
    res.unit = "updates"
    return res


CHECKS: dict[str, Callable[[Finding, RunData], Result]] = {
    "harm": check_harm,
    "positions": check_positions,
    "convergence": check_convergence,
}
