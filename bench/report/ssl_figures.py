"""Figures of the SSL ablation: fine-tuned PER against labeled minutes, frozen-probe PER,
pre-training curves and code use."""

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


def label(method: dict[str, str]) -> str:
    """quantizer+objective of a pre-trained row ("-" left out), else the front end."""
    chosen = [method[k] for k in ("quantizer", "objective") if method.get(k, "-") != "-"]
    return "+".join(chosen) or method.get("frontend", "?")


def _group(records: list[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        out[label(r.method)].append(r)
    return out


@task_figures("ssl_phoneme")
def draw(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    styles = helpers.method_styles(sorted({label(r.method) for r in records}))
    tuned = [r for r in records if r.metrics.get("test_per") is not None]
    if tuned:
        yield _per_vs_labeled(_group(tuned), styles, fig_dir, formats)
    probed = [r for r in records if r.metrics.get("probe_test_per") is not None]
    if probed:
        yield _probe_bars(_group(probed), fig_dir, formats)
    # one record per pre-trained network: the cells at "all" (the same network is fine-tuned
    # at every labeled amount)
    groups = _group([r for r in records if r.method.get("labeled", "all") == "all"])
    pretrained = {k: v for k, v in groups.items() if "pretrain_loss" in v[0].curves}
    if pretrained:
        yield _loss_curves(pretrained, styles, fig_dir, formats)
    coded = {k: v for k, v in groups.items() if "code_counts" in v[0].curves}
    if coded:
        yield _code_usage(coded, fig_dir, formats)


def _per_vs_labeled(groups, styles, fig_dir: Path, formats: Sequence[str]) -> Figure:
    drawn: list[Summary] = []
    minutes: set[float] = set()
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(4.6, 3.2))
        for name, recs in sorted(groups.items()):
            points: dict[str, list[Record]] = defaultdict(list)
            for r in recs:
                points[r.method.get("labeled", "all")].append(r)
            order = sorted(points, key=lambda p: np.mean(_seconds(points[p])))
            stats = [mean_ci([r.metrics["test_per"] for r in points[p]]) for p in order]
            x = [float(np.mean(_seconds(points[p]))) / 60 for p in order]
            minutes.update(round(m, 2) for m in x)
            line = helpers.mean_points(
                ax,
                x,
                stats,
                styles[name],
                name,
                scale=100.0,
            )
            line.set_linestyle("--" if name == "wav2vec_random" else "-")
            drawn += stats
        ax.set_xscale("log")
        ax.set_xticks(sorted(minutes), [f"{m:g}" for m in sorted(minutes)])  # measured amounts
        ax.minorticks_off()
        ax.set_xlabel("labeled speech (minutes, log scale)")
        ax.set_ylabel("fine-tuned test PER (%) ↓")
        helpers.pad_ylim(ax, helpers.summary_ends(drawn, 100.0))
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        figures.save(fig, fig_dir, "ssl_per_vs_labeled", formats)
    return Figure(
        "ssl_per_vs_labeled",
        "Fine-tuned test PER against labeled minutes, one line per pre-training objective "
        "and quantizer; dashed: the same network from random init (mean over seeds; "
        f"{helpers.spread_note(drawn)}).",
    )


def _seconds(recs: list[Record]) -> list[float]:
    return [r.metrics.get("labeled_seconds", 0.0) for r in recs]


def _probe_bars(groups, fig_dir: Path, formats: Sequence[str]) -> Figure:
    names = sorted(groups)
    drawn: list[Summary] = []
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(1.2 + 0.75 * len(names), 3.0))
        x = np.arange(len(names))
        for offset, (metric, color) in enumerate((("probe_dev_per", 0), ("probe_test_per", 1))):
            stats = [mean_ci([r.metrics.get(metric) for r in groups[n]]) for n in names]
            helpers.mean_bars(
                ax,
                x + (offset - 0.5) * 0.38,
                stats,
                0.38,
                figures.PALETTE[color],
                metric.removeprefix("probe_").replace("_per", " PER"),
                scale=100.0,
            )
            drawn += stats
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylabel("frozen-probe PER (%) ↓")
        helpers.percent_ylim(ax, helpers.summary_ends(drawn, 100.0), bars=True)
        ax.legend()
        figures.save(fig, fig_dir, "ssl_probe_per", formats)
    return Figure(
        "ssl_probe_per",
        "PER of the frozen probe (learned weighted sum of layers, 20 ms frames, averaged "
        "over seeded starts) per front end (mean over seeds; "
        f"{helpers.spread_note(drawn)}).",
    )


def _loss_curves(groups, styles, fig_dir: Path, formats: Sequence[str]) -> Figure:
    with figures.style():
        fig, axes = figures.plt.subplots(1, 2, figsize=(7.0, 2.8))
        for name, recs in groups.items():
            for ax, key in zip(axes, ("pretrain_loss", "pretrain_accuracy"), strict=True):
                curves = [
                    [v for v in r.curves[key] if v is not None] for r in recs if r.curves.get(key)
                ]
                curves = [c for c in curves if c]
                if not curves:
                    continue
                n = min(len(c) for c in curves)
                mean = np.mean([c[:n] for c in curves], axis=0)
                smooth = np.convolve(mean, np.ones(5) / 5, mode="valid") if n > 10 else mean
                ax.plot(np.arange(len(smooth)) + 1, smooth, color=styles[name].colour, label=name)
        axes[0].set_ylabel("objective loss")
        axes[1].set_ylabel("positive ranked first (fraction)")
        for ax in axes:
            ax.set_xlabel("update")
        axes[0].legend(fontsize=6)
        figures.save(fig, fig_dir, "ssl_loss_curves", formats)
    return Figure(
        "ssl_loss_curves",
        "Pre-training curves (mean over seeds, 5-update moving "
        "average). Losses of different objectives are not on a common scale.",
    )


def _code_usage(groups, fig_dir: Path, formats: Sequence[str]) -> Figure:
    with figures.style():
        fig, axes = figures.plt.subplots(
            1, len(groups), figsize=(3.0 * len(groups), 2.6), squeeze=False
        )
        for ax, (name, recs) in zip(axes[0], groups.items(), strict=True):
            counts = np.sum([r.curves["code_counts"] for r in recs], axis=0)
            ranked = np.sort(counts)[::-1]
            ax.bar(
                np.arange(len(ranked)), ranked / ranked.sum(), width=1.0, color=figures.PALETTE[0]
            )
            ax.set_yscale("log")
            used = (counts > 0).mean()
            ax.set_title(f"{name}\n{100 * used:.0f}% of entries used")
            ax.set_xlabel("codebook entry (sorted by use)")
        axes[0][0].set_ylabel("share of test frames")
        figures.save(fig, fig_dir, "ssl_code_usage", formats)
    return Figure(
        "ssl_code_usage",
        "Codebook usage on the test split (all groups, summed over "
        "seeds), entries sorted by frequency.",
    )
