"""Figures of the zoo task (Galil et al. 2023, Figure 4 at digits scale), from records alone.

Per model (a zoo member, its seeds pooled) and metric, the change that a calibrator
(temperature scaling) makes against no calibration, oriented so that > 0 is an improvement
(``bench.metrics.METRICS`` gives each metric's direction). A model is *harmed* when its
mean change over seeds is < 0, and *significantly harmed* when the whole 95% interval of
the paired per-item bootstrap (recorded by each cell as ``paired_<metric>`` = [delta, se,
lo, hi]) lies below 0; over seeds, whose test sets are independent, the interval is
mean ± 1.96·sqrt(Σ se²)/k (with one seed, the percentile interval itself). The fraction of
models harmed gets a Wilson 95% interval; the correlation of accuracy with AUROC across
the zoo is Spearman's, with its p-value and a bootstrap interval over models. The numbers
are in the figure titles and also in ``zoo_summary.md`` / ``.csv`` next to the figures.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from bench.metrics import METRICS
from bench.report import figure_helpers as helpers
from bench.report import figures
from bench.report.figures import Figure
from bench.report.task_figures import task_figures
from bench.store import Record

PAIRED_METRICS = ("ece", "adaptive_ece", "auroc", "aurc", "nll")
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Change:
    """One model's change by a calibrator on one metric, oriented: > 0 improves."""

    member: str
    accuracy: float  # mean over seeds, uncalibrated (a calibrator that keeps argmax keeps it)
    improvement: float  # in the metric's natural unit (fractions, nats)
    lo: float  # 95% interval of the improvement
    hi: float

    @property
    def harmed(self) -> bool:
        return self.improvement < 0

    @property
    def significantly_harmed(self) -> bool:
        return self.hi < 0

    @property
    def significantly_improved(self) -> bool:
        return self.lo > 0


@dataclass(frozen=True)
class Fraction:
    k: int
    n: int
    lo: float
    hi: float

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else math.nan

    def __str__(self) -> str:
        share = f"{100 * self.value:.0f}% [{100 * self.lo:.0f}, {100 * self.hi:.0f}]"
        return f"{self.k}/{self.n} = {share}"


def wilson(k: int, n: int, z: float = Z95) -> Fraction:
    """Wilson score interval of the proportion k/n (Wilson 1927)."""
    if n == 0:
        return Fraction(0, 0, math.nan, math.nan)
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Fraction(k, n, max(0.0, center - half), min(1.0, center + half))


def changes(records: list[Record], calibrator: str, metric: str) -> list[Change]:
    """Per member, the oriented change of ``metric`` by ``calibrator`` (pooled over seeds)."""
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    accuracy: dict[str, dict[int, float]] = defaultdict(dict)
    paired: dict[str, dict[int, list[float]]] = defaultdict(dict)
    for r in records:
        member = r.method.get("member", "?")
        if r.method.get("calibrator") == "none" and r.metrics.get("accuracy") is not None:
            accuracy[member][r.seed] = float(r.metrics["accuracy"])
        curve = r.curves.get(f"paired_{metric}")
        if r.method.get("calibrator") == calibrator and curve and None not in curve:
            paired[member][r.seed] = [float(v) for v in curve]
    out = []
    for member, by_seed in paired.items():
        seeds = sorted(set(by_seed) & set(accuracy[member]))
        if not seeds:
            continue
        rows = np.array([by_seed[s] for s in seeds])
        delta = float(rows[:, 0].mean())
        if len(seeds) == 1:
            lo, hi = float(rows[0, 2]), float(rows[0, 3])
        else:
            half = Z95 * math.sqrt(float(np.sum(rows[:, 1] ** 2))) / len(seeds)
            lo, hi = delta - half, delta + half
        acc = float(np.mean([accuracy[member][s] for s in seeds]))
        if sign > 0:
            out.append(Change(member, acc, delta, lo, hi))
        else:
            out.append(Change(member, acc, -delta, -hi, -lo))
    return sorted(out, key=lambda c: c.accuracy)


def per_model(records: list[Record], calibrator: str, metric: str) -> dict[str, float]:
    """Per member, ``metric`` of ``calibrator``'s records averaged over seeds."""
    values: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.method.get("calibrator") == calibrator and r.metrics.get(metric) is not None:
            values[r.method.get("member", "?")].append(float(r.metrics[metric]))
    return {m: float(np.mean(v)) for m, v in values.items()}


@dataclass(frozen=True)
class Correlation:
    rho: float
    p: float
    lo: float  # bootstrap 95% interval over models
    hi: float
    n: int

    def __str__(self) -> str:
        interval = f"[{self.lo:.2f}, {self.hi:.2f}]"
        return f"Spearman ρ = {self.rho:.2f} {interval}, p = {self.p:.2g}, n = {self.n}"


def spearman(x: Sequence[float], y: Sequence[float], n_boot: int = 2000) -> Correlation:
    """Spearman's ρ with its p-value and a percentile bootstrap interval over the pairs."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(a)
    if n < 3:
        return Correlation(math.nan, math.nan, math.nan, math.nan, n)
    result = stats.spearmanr(a, b)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if np.ptp(a[idx]) > 0 and np.ptp(b[idx]) > 0:
            boots.append(stats.spearmanr(a[idx], b[idx]).statistic)
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (math.nan, math.nan)
    return Correlation(float(result.statistic), float(result.pvalue), float(lo), float(hi), n)


def summary_rows(records: list[Record]) -> list[dict[str, object]]:
    """One row per (calibrator, metric): models improved, harmed, significantly harmed."""
    calibrators = sorted({r.method.get("calibrator", "?") for r in records} - {"none"})
    rows: list[dict[str, object]] = []
    for cal in calibrators:
        for metric in PAIRED_METRICS:
            ch = changes(records, cal, metric)
            if not ch:
                continue
            n = len(ch)
            spec = METRICS[metric]
            median = spec.scale * float(np.median([c.improvement for c in ch]))
            rows.append(
                {
                    "calibrator": cal,
                    "metric": metric,
                    "models": n,
                    "improved": sum(c.improvement > 0 for c in ch),
                    "harmed": str(wilson(sum(c.harmed for c in ch), n)),
                    "significantly_harmed": str(wilson(sum(c.significantly_harmed for c in ch), n)),
                    "significantly_improved": sum(c.significantly_improved for c in ch),
                    "median_improvement": f"{median:.3g} {spec.unit}",
                }
            )
    return rows


@task_figures("zoo")
def draw(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.status == "ok"]
    cals = sorted({r.method.get("calibrator", "none") for r in records} - {"none"})
    if not cals:
        return
    calibrator = "temperature" if "temperature" in cals else cals[0]
    yield _scatter(records, calibrator, fig_dir, formats)
    correlation = _accuracy_auroc(records, fig_dir, formats)
    if correlation is not None:
        yield correlation[0]
    rows = summary_rows(records)
    summary = _write_summary(rows, correlation[1] if correlation else None, fig_dir)
    yield _table(rows, fig_dir, formats, summary)


def _scatter(records: list[Record], calibrator: str, fig_dir: Path, formats) -> Figure:
    with figures.style():
        fig, axes = figures.plt.subplots(
            1, len(PAIRED_METRICS), figsize=(3.6 * len(PAIRED_METRICS), 3.0), squeeze=False
        )
        for ax, metric in zip(axes[0], PAIRED_METRICS, strict=True):
            ch = changes(records, calibrator, metric)
            spec = METRICS[metric]
            for group, color, label in (
                ([c for c in ch if not c.harmed], figures.PALETTE[2], "improved"),
                ([c for c in ch if c.harmed], figures.PALETTE[3], "harmed"),
            ):
                if not group:
                    continue
                x = [100 * c.accuracy for c in group]
                y = np.array([spec.scale * c.improvement for c in group])
                err = np.array(
                    [
                        [y[i] - spec.scale * c.lo, spec.scale * c.hi - y[i]]
                        for i, c in enumerate(group)
                    ]
                ).T
                ax.errorbar(x, y, yerr=err, fmt="o", ms=3, lw=0.6, color=color, label=label)
            ax.axhline(0, color="k", lw=0.6)
            harmed = sum(c.harmed for c in ch)
            sig = sum(c.significantly_harmed for c in ch)
            ax.set_title(
                f"Δ{metric}: {len(ch) - harmed} improved, {harmed} harmed\n({sig} significantly)",
                fontsize=8,
            )
            ax.set_xlabel("accuracy (%)")
            ax.set_ylabel(f"improvement ({spec.unit}) ↑")
        axes[0][0].legend(fontsize=7)
        figures.save(fig, fig_dir, "zoo_improvement_vs_accuracy", formats)
    return Figure(
        "zoo_improvement_vs_accuracy",
        f"Improvement by {calibrator} over no calibration per model (mean over seeds) against "
        "its accuracy, as Galil et al. (2023) Figure 4: green improved, red harmed; bars: "
        "95% paired bootstrap interval over test items. Models harmed (Wilson 95% interval; "
        "significantly: the paired interval excludes 0): "
        + "; ".join(harm_phrases(records, calibrator))
        + ".",
    )


def harm_phrases(records: list[Record], calibrator: str) -> list[str]:
    """Per metric: "ece 3/48 = 6% [2, 17] (1 significantly)"."""
    out = []
    for metric in PAIRED_METRICS:
        ch = changes(records, calibrator, metric)
        if ch:
            harmed = wilson(sum(c.harmed for c in ch), len(ch))
            out.append(
                f"{metric} {harmed} ({sum(c.significantly_harmed for c in ch)} significantly)"
            )
    return out


def _accuracy_auroc(records: list[Record], fig_dir: Path, formats):
    accuracy, auroc = per_model(records, "none", "accuracy"), per_model(records, "none", "auroc")
    members = sorted(set(accuracy) & set(auroc))
    if len(members) < 3:
        return None
    corr = spearman([accuracy[m] for m in members], [auroc[m] for m in members])
    median = float(np.median([accuracy[m] for m in members]))  # Galil's models are all good
    top = [m for m in members if accuracy[m] >= median]
    corr_top = spearman([accuracy[m] for m in top], [auroc[m] for m in top])
    styles = helpers.method_styles(sorted({m.split("-")[0] for m in members}))
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(4.2, 3.2))
        for arch, style in styles.items():
            mine = [m for m in members if m.split("-")[0] == arch]
            ax.scatter(
                [100 * accuracy[m] for m in mine],
                [100 * auroc[m] for m in mine],
                s=12,
                color=style.colour,
                marker=style.marker,
                label=arch,
            )
        ax.set_xlabel("accuracy (%)")
        ax.set_ylabel("AUROC of max-softmax (%)")
        ax.set_title(f"all: {corr}\naccuracy ≥ median: {corr_top}", fontsize=7)
        ax.legend(fontsize=7)
        figures.save(fig, fig_dir, "zoo_accuracy_auroc", formats)
    figure = Figure(
        "zoo_accuracy_auroc",
        "Accuracy vs selective-prediction AUROC per model (uncalibrated, mean over seeds): "
        f"all models {corr}; the models at or above the median accuracy "
        f"({100 * median:.1f}%) {corr_top}.",
    )
    return figure, (corr, corr_top, median)


def _write_summary(rows, corr: tuple | None, fig_dir: Path) -> str:
    """Write zoo_summary.md and .csv; return the Markdown (shown in the report too)."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] if rows else []
    lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
    if corr is not None:
        every, top, median = corr
        lines += ["", f"Accuracy vs AUROC across the zoo (uncalibrated): all models {every}; "]
        lines[-1] += f"models with accuracy ≥ the median ({100 * median:.1f}%): {top}."
    (fig_dir / "zoo_summary.md").write_text("\n".join(lines) + "\n")
    with open(fig_dir / "zoo_summary.csv", "w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return "\n".join(lines)


def _table(rows, fig_dir: Path, formats, summary: str = "") -> Figure:
    columns = ["calibrator", "metric", "models", "improved", "harmed", "significantly_harmed"]
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(9.0, 0.35 * (len(rows) + 2)))
        ax.axis("off")
        table = ax.table(
            cellText=[[str(r[c]) for c in columns] for r in rows],
            colLabels=[c.replace("_", " ") for c in columns],
            loc="center",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(7)
        figures.save(fig, fig_dir, "zoo_harm_table", formats)
    return Figure(
        "zoo_harm_table",
        "Models a calibrator harms per metric (mean change over seeds in the wrong direction), "
        "with Wilson 95% intervals; significantly: the paired 95% interval excludes 0.",
        text=summary,
    )
