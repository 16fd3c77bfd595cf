"""Figures of distillation runs: student metrics against the temperature, and the curves.

Drawn from records alone. Per student, each kd setting's test accuracy, NLL and ECE are
plotted against T, one line per α, beside the same student trained without a teacher
(horizontal line) and the teacher itself (dashed). Points are means over seeds; bars and
bands are Student-t 95% intervals over seeds, drawn only when there are two seeds or more.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from bench.report import figure_helpers as helpers
from bench.report import figures
from bench.report.figures import Figure
from bench.report.stats import Summary, mean_ci
from bench.report.task_figures import task_figures
from bench.store import Record

PANELS: tuple[tuple[str, str, float], ...] = (
    ("accuracy", "test accuracy (%) ↑", 100.0),
    ("nll", "test NLL (nats) ↓", 1.0),
    ("ece", "test ECE (%) ↓", 100.0),
)
NONE = "-"


def _groups(records: list[Record]) -> dict[str, dict[tuple[str, str, str], list[Record]]]:
    """{student: {(distill, temperature, alpha): [records over seeds]}}."""
    out: dict[str, dict[tuple[str, str, str], list[Record]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in records:
        m = r.method
        key = (m.get("distill", "?"), m.get("temperature", NONE), m.get("alpha", NONE))
        out[m.get("classifier", "?")][key].append(r)
    return out


def _summary(recs: list[Record], metric: str, scale: float) -> Summary:
    s = mean_ci([r.metrics.get(metric) for r in recs])
    return Summary(scale * s.mean, scale * s.lo, scale * s.hi, s.n, s.deterministic)


@task_figures("distill")
def draw(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.status == "ok" and "distill" in r.method]
    if not records:
        return
    groups = _groups(records)
    alphas = sorted({k[2] for g in groups.values() for k in g if k[1] != NONE}, key=float)
    styles = helpers.method_styles([NO_TEACHER, TEACHER, *(_kd(a) for a in alphas)])
    if any(k[0] != "none" for g in groups.values() for k in g):
        yield _versus_temperature(groups, styles, fig_dir, formats)
    if any("valid_accuracy" in r.curves for r in records):
        yield _curves(groups, styles, fig_dir, formats)


NO_TEACHER, TEACHER = "no teacher", "teacher"


def _kd(alpha: str) -> str:
    return f"kd, α={alpha}"


def _versus_temperature(groups, styles, fig_dir: Path, formats: Sequence[str]) -> Figure:
    students = list(groups)
    with figures.style():
        fig, axes = figures.plt.subplots(
            len(PANELS), len(students), figsize=(3.2 * len(students), 2.3 * len(PANELS)),
            squeeze=False,
        )  # fmt: skip
        for j, student in enumerate(students):
            rows = groups[student]
            kd = [k for k in rows if k[1] != NONE]
            temps = sorted({float(k[1]) for k in kd})
            alphas = sorted({k[2] for k in kd}, key=float)
            everything = [r for recs in rows.values() for r in recs]
            for i, (metric, label, scale) in enumerate(PANELS):
                ax = axes[i][j]
                for c, alpha in enumerate(alphas):
                    pts = [
                        (float(k[1]), _summary(rows[k], metric, scale)) for k in kd if k[2] == alpha
                    ]
                    pts.sort(key=lambda p: p[0])
                    dodge = 0.06 * (c - (len(alphas) - 1) / 2)  # overlapping α lines apart
                    x, s = [math.log2(p[0]) + dodge for p in pts], [p[1] for p in pts]
                    helpers.mean_points(ax, x, s, styles[_kd(alpha)], _kd(alpha), ms=3)
                for key, recs in rows.items():
                    if key[0] == "none":
                        level = _summary(recs, metric, scale)
                        _level(ax, level, styles[NO_TEACHER].colour, NO_TEACHER)
                teacher = _summary(everything, f"teacher_{metric}", scale)
                if teacher.n:
                    ax.axhline(
                        teacher.mean, color=styles[TEACHER].colour, ls="--", lw=1, label=TEACHER
                    )
                if temps:
                    ticks = [math.log2(t) for t in temps]  # T on a log2 axis, labelled T
                    ax.set_xticks(ticks, [f"{t:g}" for t in temps])
                    ax.set_xlim(ticks[0] - 0.5, ticks[-1] + 0.5)
                if i == 0:
                    ax.set_title(f"student: {student}")
                if i == len(PANELS) - 1:
                    ax.set_xlabel("temperature T")
                if j == 0:
                    ax.set_ylabel(label)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.03))
        figures.save(fig, fig_dir, "distill_temperature", formats)
    return Figure(
        "distill_temperature",
        "Students distilled at temperature T (one line per soft-target weight α) against the "
        "same student without a teacher (solid line, its band) and the teacher (dashed); "
        "means over seeds, bars and bands Student-t 95% intervals over seeds (none with one "
        "seed).",
    )


def _level(ax, s: Summary, color: str, label: str) -> None:
    """A horizontal line at the mean, with its interval as a band when there is one."""
    ax.axhline(s.mean, color=color, lw=1.2, label=label)
    if helpers.has_interval(s):
        ax.axhspan(s.lo, s.hi, color=color, alpha=0.12, lw=0)


def _mean_curve(recs: list[Record], x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    with_curve = [r for r in recs if y_key in r.curves]
    if not with_curve:
        return np.array([]), np.array([])
    n = min(len(r.curves[y_key]) for r in with_curve)
    y = np.mean([r.curves[y_key][:n] for r in with_curve], axis=0)
    x = np.asarray(with_curve[0].curves[x_key][:n]) if x_key else np.arange(1, n + 1)
    return x, y


def _curves(groups, styles, fig_dir: Path, formats: Sequence[str]) -> Figure:
    """Per student: the no-teacher run, the kd setting with the best mean test accuracy,
    and the teacher: training objective per epoch and validation accuracy per eval point."""
    students = list(groups)
    with figures.style():
        fig, axes = figures.plt.subplots(
            2, len(students), figsize=(3.2 * len(students), 4.6), squeeze=False, sharex=True
        )
        for j, student in enumerate(students):
            rows = groups[student]
            kd = [k for k in rows if k[0] != "none"]
            shown = [k for k in rows if k[0] == "none"]
            if kd:
                shown.append(max(kd, key=lambda k: _summary(rows[k], "accuracy", 1.0).mean))
            for key in shown:
                label = NO_TEACHER if key[0] == "none" else f"{key[0]} T={key[1]} α={key[2]}"
                style = styles[NO_TEACHER] if key[0] == "none" else styles[_kd(key[2])]
                color = style.colour
                x, y = _mean_curve(rows[key], "", "train_loss")
                axes[0][j].plot(x, y, color=color, label=label)
                x, y = _mean_curve(rows[key], "valid_epoch", "valid_accuracy")
                axes[1][j].plot(x, 100 * y, color=color, marker=style.marker, ms=2, label=label)
            everything = [r for recs in rows.values() for r in recs]
            x, y = _mean_curve(everything, "teacher_valid_epoch", "teacher_valid_accuracy")
            if len(x):
                axes[1][j].plot(x, 100 * y, color=styles[TEACHER].colour, ls="--", label=TEACHER)
            axes[0][j].set_yscale("log")
            axes[0][j].set_title(f"student: {student}")
            axes[1][j].set_xlabel("epoch")
            axes[1][j].legend(fontsize=6)
        axes[0][0].set_ylabel("training objective")
        axes[1][0].set_ylabel("valid accuracy (%)")
        figures.save(fig, fig_dir, "distill_curves", formats)
    return Figure(
        "distill_curves",
        "Learning curves (means over seeds): training objective per epoch (cross-entropy "
        "without a teacher, the KD loss with one: not comparable in level) and validation "
        "accuracy per eval point, for the no-teacher student, the best kd setting, the teacher.",
    )
