"""Figures of the G2P task: error rate by output position, the ε_i schedules, and the
distilled students beside their teacher."""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from bench import tuning
from bench.report import figure_helpers as helpers
from bench.report import figures
from bench.report.figures import Figure
from bench.report.task_figures import task_figures
from bench.store import Record


def _mean_curve(curves: list[list]) -> np.ndarray:
    """Element-wise mean of curves of possibly different lengths, ignoring None."""
    n = max(len(c) for c in curves)
    table = np.full((len(curves), n), np.nan)
    for k, c in enumerate(curves):
        table[k, : len(c)] = [np.nan if v is None else v for v in c]
    with warnings.catch_warnings():  # an all-None column is a mean of nothing: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(table, axis=0)


@task_figures("g2p")
def draw(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.curves.get("position_error")]
    if not records:
        return
    styles = helpers.method_styles(sorted({r.method["forcing"] for r in records}))
    tuned = [r for r in records if r.method.get(tuning.COLUMN) == tuning.TUNED]
    records = [r for r in records if r.method.get(tuning.COLUMN) != tuning.TUNED]
    yield _position_errors(records, styles, fig_dir, formats)
    if tuned:  # the equal-tuning rows (bench.tuning) in a figure of their own
        yield _position_errors(tuned, styles, fig_dir, formats, tuned=True)
    yield _schedules(records, styles, fig_dir, formats)
    if any("teacher_per_beam" in r.metrics for r in records):
        yield _distillation(records, styles, fig_dir, formats)


def _position_errors(
    records: list[Record], styles, fig_dir: Path, formats, tuned: bool = False
) -> Figure:
    # arch -> forcing -> [per-seed curves]
    series: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    counts: dict[str, list] = defaultdict(list)
    for r in records:
        series[r.method["arch"]][r.method["forcing"]].append(r.curves["position_error"])
        counts[r.method["arch"]].append(r.curves.get("position_count", []))
    archs = sorted(series)
    with figures.style():
        fig, axes = figures.plt.subplots(
            1, len(archs), figsize=(3.8 * len(archs), 3.0), squeeze=False, sharey=True
        )
        for ax, arch in zip(axes[0], archs, strict=True):
            n_words = _mean_curve(counts[arch]) if counts[arch] else None
            for name, curves in sorted(series[arch].items()):
                mean = _mean_curve(curves)
                keep = np.arange(len(mean))
                if n_words is not None and len(n_words) == len(mean):
                    keep = keep[n_words >= 20]  # positions reached by too few words are noise
                ax.plot(
                    keep + 1,
                    100 * mean[keep],
                    marker=styles[name].marker,
                    markersize=2.5,
                    color=styles[name].colour,
                    label=name,
                )
            ax.set_title(f"{arch} decoder")
            ax.set_xlabel("reference phoneme position")
            ax.set_ylabel("phoneme error (%) ↓, greedy")
            ax.legend(fontsize=6)
        stem = "g2p_error_by_position" + ("_tuned" if tuned else "")
        figures.save(fig, fig_dir, stem, formats)
    which = (
        "the hp=tuned rows (each strategy at the point its random search chose on the valid words)"
        if tuned
        else "every strategy at its default hyper-parameters"
    )
    return Figure(
        stem,
        "Test phoneme error rate by position in the (closest) reference pronunciation, "
        f"greedy decoding, mean over seeds, {which}; a rising curve shows errors compounding "
        "along the output (exposure bias). Positions reached by fewer than 20 words are left "
        "out.",
    )


def _schedules(records: list[Record], styles, fig_dir: Path, formats) -> Figure:
    by_method: dict[str, list] = {}
    for r in sorted(records, key=lambda r: (r.method["arch"], r.seed)):
        by_method.setdefault(r.method["forcing"], r.curves.get("teacher_prob", []))
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(4.2, 2.9))
        for name, eps in sorted(by_method.items()):
            if eps:
                ax.plot(
                    np.arange(len(eps)),
                    eps,
                    color=styles[name].colour,
                    marker=styles[name].marker,
                    markevery=max(1, len(eps) // 6),
                    markersize=3,
                    label=name,
                    linestyle="--" if min(eps) == 1 else "-",
                )
        ax.set_ylim(-0.05, 1.05)  # ε = 0 and ε = 1 both clear of the edges
        ax.set_xlabel("training step i")
        ax.set_ylabel("ε_i (probability of the gold token)")
        ax.legend(fontsize=6)
        figures.save(fig, fig_dir, "g2p_schedules", formats)
    return Figure(
        "g2p_schedules",
        "Scheduled-sampling schedules ε_i over training (Bengio et al. 2015): linear "
        "max(ε, k − c·i), exponential k^i, inverse sigmoid k/(k + exp(i/k)); teacher forcing, "
        "professor forcing and the distillation strategies feed the gold token (sequence_kd: "
        "the teacher's) throughout (ε_i = 1).",
    )


# the rows the figure compares, and their bar labels
DISTILLATION = {"teacher": "teacher forcing", "word_kd": "word_kd", "sequence_kd": "sequence_kd"}
TEACHER = "KD teacher (wide)"


def _distillation(records: list[Record], styles, fig_dir: Path, formats) -> Figure:
    # arch -> bar label -> per-seed test PER (beam); the teacher's from the KD records
    values: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        arch, forcing = r.method["arch"], r.method["forcing"]
        if forcing in DISTILLATION:
            values[arch][DISTILLATION[forcing]][r.seed] = r.metrics["test_per_beam"]
        if "teacher_per_beam" in r.metrics:
            values[arch][TEACHER][r.seed] = r.metrics["teacher_per_beam"]
    labels = [TEACHER, *DISTILLATION.values()]
    archs = sorted(values)
    with figures.style():
        fig, axes = figures.plt.subplots(
            1, len(archs), figsize=(3.6 * len(archs), 2.9), squeeze=False, sharey=True
        )
        for ax, arch in zip(axes[0], archs, strict=True):
            shown = [lab for lab in labels if values[arch].get(lab)]
            strategy = {label: name for name, label in DISTILLATION.items()}
            for k, lab in enumerate(shown):
                seeds = 100 * np.array(list(values[arch][lab].values()))
                colour = styles[strategy[lab]].colour if lab in strategy else "0.55"  # teacher
                ax.bar(k, seeds.mean(), color=colour)
                ax.plot(np.full(len(seeds), k), seeds, "k.", markersize=3)
            ax.set_xticks(range(len(shown)), shown, rotation=25, ha="right", fontsize=6)
            ax.set_title(f"{arch} decoder")
            ax.set_ylabel("test PER (%) ↓, beam")
        figures.save(fig, fig_dir, "g2p_distillation", formats)
    return Figure(
        "g2p_distillation",
        "Knowledge distillation (Kim & Rush 2016): test PER with beam search of the wide "
        "teacher (twice as wide; the ceiling) and of the students (the task's model) trained "
        "with teacher forcing on gold (the baseline), word-level KD and sequence-level KD; "
        "bars are means over seeds, dots single seeds.",
    )
