"""Figures of the VQ-VAE quantizer comparison: code perplexity and usage over training
(where a codebook collapses), and the final reconstruction MSE and PNMI per quantizer and
codebook size. Drawn from the records alone (curves and metrics, averaged over seeds)."""

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

Groups = dict[str, dict[str, list[Record]]]  # codebook size -> quantizer -> records
ORDER = ("vq_st", "vq_ema", "vq_restart", "gumbel")  # the task's rows, in its order


def _group(records: list[Record]) -> tuple[Groups, list[Record]]:
    """Quantized records by size and quantizer (sizes in numeric order), and the records
    of the row without a quantizer."""
    out: Groups = defaultdict(lambda: defaultdict(list))
    plain = []
    for r in records:
        size = r.method.get("codebook", "-")
        if size == "-":
            plain.append(r)
        else:
            out[size][r.method.get("quantizer", "?")].append(r)
    ordered = {k: out[k] for k in sorted(out, key=int)}
    return ordered, plain


def _colour(quantizers: list[str], name: str) -> str:
    """The quantizer's colour, the same in both figures (the task's row order)."""
    return helpers.method_styles(quantizers)[name].colour


@task_figures("vqvae")
def draw(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.status == "ok"]
    groups, plain = _group(records)
    used = {q for by_q in groups.values() for q in by_q}
    quantizers = [q for q in ORDER if q in used] + sorted(used - set(ORDER))
    if any(
        "valid_code_perplexity" in r.curves
        for by_q in groups.values()
        for rs in by_q.values()
        for r in rs
    ):
        yield _training_curves(groups, quantizers, fig_dir, formats)
    if groups:
        yield _final_bars(groups, plain, quantizers, fig_dir, formats)


def _mean_curve(recs: list[Record], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, mean over seeds) of a curve, on the steps every seed recorded."""
    curves = [r for r in recs if key in r.curves and "step" in r.curves]
    if not curves:
        return None
    n = min(len(r.curves[key]) for r in curves)
    steps = np.asarray(curves[0].curves["step"][:n], dtype=float)
    return steps, np.mean([np.asarray(r.curves[key][:n], dtype=float) for r in curves], axis=0)


def _training_curves(groups: Groups, quantizers: list[str], fig_dir: Path, formats) -> Figure:
    sizes = list(groups)
    with figures.style():
        fig, axes = figures.plt.subplots(
            2, len(sizes), figsize=(3.0 * len(sizes), 4.8), squeeze=False, sharex=True
        )
        for j, size in enumerate(sizes):
            top, bottom = axes[0][j], axes[1][j]
            for name in quantizers:
                recs = groups[size].get(name, [])
                for ax, key, scale in (
                    (top, "valid_code_perplexity", 1.0),
                    (bottom, "valid_code_usage", 100.0),
                ):
                    colour = _colour(quantizers, name)
                    for r in recs:  # each seed thin: a seed that stalls stays visible
                        if key in r.curves and "step" in r.curves:
                            n = len(r.curves[key])
                            values = scale * np.asarray(r.curves[key], dtype=float)
                            ax.plot(r.curves["step"][:n], values, color=colour, lw=0.5, alpha=0.35)
                    curve = _mean_curve(recs, key)
                    if curve is not None:
                        ax.plot(
                            curve[0], scale * curve[1], label=name, color=_colour(quantizers, name)
                        )
            top.axhline(int(size), color="grey", lw=0.8, ls="--")  # uniform use of every entry
            top.set_yscale("log")
            top.set_title(f"{size} entries")
            bottom.set_ylim(-4, 104)  # 0 % and 100 % used stay visible
            bottom.set_xlabel("training step")
        axes[0][0].set_ylabel("valid code perplexity (log)")
        axes[1][0].set_ylabel("entries used on valid (%)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="lower center",
            ncol=len(labels),
            fontsize=7,
            bbox_to_anchor=(0.5, -0.05),
        )
        figures.save(fig, fig_dir, "vqvae_codebook_use", formats)
    return Figure(
        "vqvae_codebook_use",
        "Code perplexity (top, log scale; dashed: the codebook size, every entry equally "
        "used) and the share of entries used (bottom) on the valid utterances during "
        "training, one panel per codebook size, mean over seeds (thin: each seed). A curve "
        "far below the dashed line that stays flat is a collapsed codebook.",
    )


def _final_bars(
    groups: Groups, plain: list[Record], quantizers: list[str], fig_dir: Path, formats
) -> Figure:
    sizes = list(groups)
    width = 0.8 / max(1, len(quantizers))
    x = np.arange(len(sizes))
    drawn: list[Summary] = []
    with figures.style():
        fig, axes = figures.plt.subplots(1, 2, figsize=(3.6 + 1.6 * len(sizes), 3.0))
        fig.subplots_adjust(wspace=0.35)
        for ax, metric, scale, label in (
            (axes[0], "recon_mse", 1.0, "test reconstruction MSE ↓"),
            (axes[1], "phone_pnmi", 100.0, "test PNMI (%) ↑"),
        ):
            for i, name in enumerate(quantizers):
                stats = [
                    mean_ci([r.metrics.get(metric) for r in groups[s].get(name, [])]) for s in sizes
                ]
                helpers.mean_bars(
                    ax,
                    x + i * width - 0.4 + width / 2,
                    stats,
                    width,
                    _colour(quantizers, name),
                    name,
                    scale=scale,
                    alpha=0.85,
                )
                drawn += stats
                for k, size in enumerate(sizes):  # every seed as a dot
                    seeds = [r.metrics.get(metric) for r in groups[size].get(name, [])]
                    seeds = [scale * v for v in seeds if v is not None]
                    ax.scatter(
                        [x[k] + i * width - 0.4 + width / 2] * len(seeds),
                        seeds,
                        s=6,
                        color="black",
                        zorder=3,
                    )
            ax.set_xticks(x, [f"{s} entries" for s in sizes])
            ax.set_ylabel(label)
        if plain:
            s = mean_ci([r.metrics.get("recon_mse") for r in plain])
            axes[0].axhline(s.mean, color="black", ls=":", lw=1.0, label="none (no quantizer)")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="lower center",
            ncol=3,
            fontsize=7,
            bbox_to_anchor=(0.5, -0.14),
        )
        figures.save(fig, fig_dir, "vqvae_final", formats)
    return Figure(
        "vqvae_final",
        "Test reconstruction MSE (standardised log-mel; dotted: no quantizer) and PNMI of "
        "the codes against the phone alignments, per quantizer and codebook size (mean; "
        f"{helpers.spread_note(drawn)}; dots: the seeds).",
    )
