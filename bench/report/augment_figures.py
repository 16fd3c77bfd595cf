"""Figure of the augmentation ablation: accuracy per augmentation on each test condition."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from bench.report import figures
from bench.report.figures import Figure
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
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(5.0, 2.8))
        for k, (metric, label) in enumerate(CONDITIONS):
            vals = [[100 * r.metrics[metric] for r in by_aug[n]] for n in names]
            means = [float(np.mean(v)) for v in vals]
            errs = [float(np.std(v)) if len(v) > 1 else 0.0 for v in vals]
            x = np.arange(len(names)) + (k - 1) * width
            ax.bar(x, means, width, yerr=errs, label=label, color=figures.PALETTE[k])
        ax.set_xticks(np.arange(len(names)), names)
        ax.set_ylabel("tone-of-voice accuracy (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, ncols=3, loc="upper center")
        figures.save(fig, fig_dir, "augment_accuracy", formats)
    yield Figure(
        "augment_accuracy",
        "Tone-of-voice test accuracy per training augmentation on clean, noisy (5 dB) and "
        "sped-up (×1.15) test audio; bars are means over seeds, whiskers the std.",
    )
