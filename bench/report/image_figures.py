"""Figures of the digits image tasks: accuracy per test condition per training
augmentation (``image_augment``), and k-shot accuracy per transfer mode (``head_reset``).

Both are drawn from records alone: bars and points are means over seeds, whiskers the
Student-t 95% interval (none with one seed), and every seed's value is shown as a dot.
"""

from __future__ import annotations

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

CONDITIONS = (
    ("accuracy_clean", "clean"),
    ("accuracy_rotated", "rotated"),
    ("accuracy_scaled", "rescaled"),
)
MODES = ("scratch", "head_only", "full")


@task_figures("image_augment")
def draw_augment(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.status == "ok" and "accuracy_clean" in r.metrics]
    if not records:
        return
    by_aug: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_aug[r.method["image_augment"]].append(r)
    names = list(by_aug)
    styles = helpers.method_styles(names)
    width = 0.8 / len(names)
    n_seeds = max(len(v) for v in by_aug.values())
    drawn: list[Summary] = []
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(1.4 + 1.3 * len(CONDITIONS), 2.8))
        for k, name in enumerate(names):
            x = np.arange(len(CONDITIONS)) + (k - (len(names) - 1) / 2) * width
            values = [[r.metrics.get(m) for r in by_aug[name]] for m, _ in CONDITIONS]
            stats = [mean_ci(v) for v in values]
            drawn += stats
            helpers.mean_bars(ax, x, stats, width, styles[name].colour, name, scale=100.0)
            for xi, v in zip(x, values, strict=True):
                pts = [100 * u for u in v if u is not None]
                if len(pts) > 1:
                    ax.scatter([xi] * len(pts), pts, s=5, c="k", zorder=3)
        ax.set_xticks(np.arange(len(CONDITIONS)), [label for _, label in CONDITIONS])
        ax.set_xlabel("test images")
        ax.set_ylabel("accuracy (%) ↑")
        low = min(100 * r.metrics[m] for r in records for m, _ in CONDITIONS)
        ax.set_ylim(max(0.0, 10 * np.floor(low / 10) - 10), 102)  # a bar at 100 % shows
        ax.legend(
            title="trained with",
            fontsize=7,
            title_fontsize=7,
            ncols=len(names),
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            frameon=False,
        )
        figures.save(fig, fig_dir, "image_augment_accuracy", formats)
    spread = helpers.spread_note(drawn) + (", dots the seeds" if n_seeds > 1 else "")
    yield Figure(
        "image_augment_accuracy",
        "Digits test accuracy per training augmentation on clean, rotated and rescaled "
        f"copies of the test images; bars are means over seeds ({spread}).",
    )


@task_figures("head_reset")
def draw_head_reset(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.status == "ok" and "accuracy" in r.metrics]
    if not records:
        return
    groups: dict[str, dict[int, list[float | None]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        groups[r.method["mode"]][int(r.method["shots"])].append(r.metrics["accuracy"])
    modes = [m for m in MODES if m in groups] + sorted(set(groups) - set(MODES))
    n_seeds = max(len(v) for g in groups.values() for v in g.values())
    styles = helpers.method_styles(modes)
    drawn: list[Summary] = []
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(3.8, 2.8))
        for mode in modes:
            shots = sorted(groups[mode])
            stats = [mean_ci(groups[mode][s]) for s in shots]
            colour = styles[mode].colour
            helpers.mean_points(ax, shots, stats, styles[mode], mode, scale=100.0, ms=3)
            drawn += stats
            if n_seeds > 1:
                for s in shots:
                    v = groups[mode][s]
                    ax.scatter(
                        [s] * len(v), [100 * (u or 0.0) for u in v], s=5, color=colour, alpha=0.5
                    )
        all_shots = sorted({s for g in groups.values() for s in g})
        ax.set_xscale("log")
        ax.set_xticks(all_shots, [str(s) for s in all_shots])
        ax.minorticks_off()
        ax.set_xlabel("labelled images per new digit (log scale)")
        ax.set_ylabel("test accuracy on digits 5-9 (%) ↑")
        helpers.pad_ylim(
            ax,
            helpers.summary_ends(drawn, 100.0)
            + [100 * (u or 0.0) for g in groups.values() for v in g.values() for u in v],
        )
        ax.legend(fontsize=7)
        figures.save(fig, fig_dir, "head_reset_accuracy", formats)
    spread = helpers.spread_note(drawn)
    yield Figure(
        "head_reset_accuracy",
        "Accuracy on the digits 5-9 after re-training a network pre-trained on 0-4 with a "
        "new last layer (head_only: that layer alone; full: every layer) or training it "
        f"from scratch, against the labelled images per digit; means over seeds ({spread}).",
    )
