"""Figure of the augmentation ablation: accuracy per augmentation on each test condition."""

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

CONDITIONS = (("acc_clean", "clean"), ("acc_noisy", "noisy"), ("acc_speed", "speed ×1.15"))


@task_figures("augment")
def draw(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.status == "ok"]
    if not records:
        return
    by_aug: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_aug[r.method["augment"]].append(r)
    names = list(by_aug)
    width = 0.8 / len(CONDITIONS)
    drawn: list[Summary] = []
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(5.0, 2.8))
        for k, (metric, label) in enumerate(CONDITIONS):
            stats = [mean_ci([r.metrics.get(metric) for r in by_aug[n]]) for n in names]
            x = np.arange(len(names)) + (k - 1) * width
            helpers.mean_bars(ax, x, stats, width, figures.PALETTE[k], label, scale=100.0)
            drawn += stats
        ax.set_xticks(np.arange(len(names)), names)
        ax.set_ylabel("tone-of-voice accuracy (%)")
        helpers.percent_ylim(ax, helpers.summary_ends(drawn, 100.0), pad=12.0, bars=True)
        ax.legend(fontsize=7, ncols=3, loc="upper center")
        figures.save(fig, fig_dir, "augment_accuracy", formats)
    yield Figure(
        "augment_accuracy",
        "Tone-of-voice test accuracy per training augmentation on clean, noisy (5 dB) and "
        f"sped-up (×1.15) test audio; bars are means over seeds ({helpers.spread_note(drawn)}).",
    )
