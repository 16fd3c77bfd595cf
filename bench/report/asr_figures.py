"""Figures of the ASR task: WER and CER per front end, WER vs labeled minutes."""

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


def frontend_label(m: dict[str, str]) -> str:
    """quantizer+objective of a pre-trained front end ("-" left out), else the front end."""
    chosen = [m[k] for k in ("quantizer", "objective") if m.get(k, "-") != "-"]
    return "+".join(chosen) or m["frontend"]


@task_figures("asr")
def draw(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    if not records:
        return
    # (language, front end) -> labeled seconds -> [test WER]
    series: dict[tuple[str, str], dict[float, list]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        key = (r.method["language"], frontend_label(r.method))
        series[key][r.metrics.get("labeled_seconds", 0.0)].append(r.metrics.get("test_wer"))
    languages = sorted({lang for lang, _ in series})
    styles = helpers.method_styles(sorted({name for _, name in series}))
    drawn: list[Summary] = []
    with figures.style():
        fig, axes = figures.plt.subplots(
            1, len(languages), figsize=(3.6 * len(languages), 2.9), squeeze=False
        )
        for ax, lang in zip(axes[0], languages, strict=True):
            shown: list[Summary] = []
            for (lng, name), points in sorted(series.items()):
                if lng != lang:
                    continue
                xs = sorted(points)
                stats = [mean_ci(points[x]) for x in xs]
                helpers.mean_points(
                    ax, [x / 60 for x in xs], stats, styles[name], name, scale=100.0
                )
                shown += stats
            helpers.percent_ylim(ax, helpers.summary_ends(shown, 100.0))
            drawn += shown
            ax.set_title({"en": "English", "lv": "Latvian"}.get(lang, lang))
            ax.set_xlabel("labeled speech (minutes)")
            ax.set_ylabel("test WER (%) ↓, greedy")
            ax.legend(fontsize=6)
        figures.save(fig, fig_dir, "asr_wer_vs_labeled", formats)
    yield Figure(
        "asr_wer_vs_labeled",
        "Test WER (greedy decoding) against the amount of labeled speech, per front end and "
        f"language (mean over seeds; {helpers.spread_note(drawn)}).",
    )
    yield _cer_bars(records, fig_dir, formats)


def _cer_bars(records: list[Record], fig_dir: Path, formats: Sequence[str]) -> Figure:
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[f"{frontend_label(r.method)} {r.method['language']} {r.method['labeled']}"].append(r)
    names = sorted(groups)
    drawn: list[Summary] = []
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(1.5 + 0.8 * len(names), 3.0))
        x = np.arange(len(names))
        for k, (metric, color) in enumerate((("test_cer", 0), ("test_cer_lm", 1))):
            stats = [mean_ci([r.metrics.get(metric) for r in groups[n]]) for n in names]
            helpers.mean_bars(
                ax,
                x + (k - 0.5) * 0.38,
                stats,
                0.38,
                figures.PALETTE[color],
                "greedy" if k == 0 else "beam + LM",
                scale=100.0,
            )
            drawn += stats
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylabel("test CER (%) ↓")
        helpers.percent_ylim(ax, helpers.summary_ends(drawn, 100.0), bars=True)
        ax.legend()
        figures.save(fig, fig_dir, "asr_cer", formats)
    return Figure(
        "asr_cer",
        "Test CER with greedy decoding and with beam search + word n-gram LM (mean over "
        f"seeds; {helpers.spread_note(drawn)}).",
    )
