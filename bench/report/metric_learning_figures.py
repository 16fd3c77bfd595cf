"""Figures of the metric-learning tasks: embeddings per loss (2-D PCA), Recall@1 vs step,
and the confusion matrices of the prosody task."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from bench.report import figure_helpers as helpers
from bench.report import figures
from bench.report.figures import Figure
from bench.report.task_figures import task_figures
from bench.store import Record


def row_label(m: dict[str, str]) -> str:
    if m["loss"] == "-":  # no loss: the untrained baseline row
        return "untrained"
    return m["loss"] if m.get("miner", "-") == "-" else f"{m['loss']}/{m['miner']}"


def _first_seed(records: list[Record]) -> dict[str, Record]:
    """One record per (loss, miner) row: the lowest seed's, so the figure is reproducible."""
    out: dict[str, Record] = {}
    for r in sorted(records, key=lambda r: r.seed):
        out.setdefault(row_label(r.method), r)
    return out


@task_figures("speaker")
def draw_speaker(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.status == "ok"]
    if not records:
        return
    yield _pca(records, fig_dir, formats)
    yield _recall_curves(records, fig_dir, "speaker_recall_vs_step", "speakers", formats)


def _pca(records: list[Record], fig_dir: Path, formats: Sequence[str]) -> Figure:
    rows = {k: r for k, r in _first_seed(records).items() if r.curves.get("test_pca")}
    names = sorted(rows)
    cols = min(3, len(names))
    nrows = -(-len(names) // cols)
    with figures.style():
        fig, axes = figures.plt.subplots(
            nrows, cols, figsize=(2.6 * cols, 2.4 * nrows), squeeze=False
        )
        for ax in axes.flat[len(names) :]:
            ax.axis("off")
        for ax, name in zip(axes.flat, names, strict=False):
            r = rows[name]
            xy = np.asarray(r.curves["test_pca"])
            speakers = r.curves["test_speakers"]
            styles = helpers.method_styles(sorted(set(speakers)))  # colour and marker
            for spk, style in styles.items():
                sel = np.array([s == spk for s in speakers])
                ax.scatter(*xy[sel].T, s=7, color=style.colour, marker=style.marker, lw=0)
            r1 = r.metrics.get("recall_at_1", float("nan"))
            ax.set_title(f"{name}  R@1 {100 * r1:.0f}%", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        figures.save(fig, fig_dir, "speaker_embeddings_pca", formats)
    return Figure(
        "speaker_embeddings_pca",
        "Test-speaker embeddings (unit-normalised) projected on their first two principal "
        "components, one panel per loss (lowest seed); colour and marker = speaker.",
    )


def _recall_curves(
    records: list[Record], fig_dir: Path, stem: str, what: str, formats: Sequence[str]
) -> Figure:
    series: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.curves.get("step") and r.curves.get("valid_recall_at_1"):
            series[row_label(r.method)].append(r)
    styles = helpers.method_styles(sorted(series))
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(4.6, 3.0))
        for name, style in styles.items():
            runs = series[name]
            steps = runs[0].curves["step"]
            ys = np.array(
                [r.curves["valid_recall_at_1"] for r in runs if r.curves["step"] == steps]
            )
            if len(steps) == 1:  # the untrained row: a horizontal reference line
                ax.axhline(100 * ys.mean(), color="grey", ls=":", label=name)
                continue
            ax.plot(
                steps, 100 * ys.mean(0), color=style.colour, marker=style.marker, ms=3, label=name
            )
        ax.set_xlabel("training step")
        ax.set_ylabel(f"valid Recall@1 (%) ↑, {what}")
        ax.legend(fontsize=6, ncol=2)
        figures.save(fig, fig_dir, stem, formats)
    return Figure(
        stem,
        f"Recall@1 on the valid {what} against the training step, per loss "
        "(mean over seeds; dotted: the untrained network).",
    )


@task_figures("prosody")
def draw_prosody(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.status == "ok"]
    if not records:
        return
    for target in sorted({r.method["target"] for r in records}):
        mine = [r for r in records if r.method["target"] == target]
        yield _confusions(mine, fig_dir, target, formats)


def _confusions(
    records: list[Record], fig_dir: Path, target: str, formats: Sequence[str]
) -> Figure:
    rows = {k: r for k, r in _first_seed(records).items() if r.curves.get("confusion")}
    names = sorted(rows)
    cols = min(3, len(names))
    nrows = -(-len(names) // cols)
    stem = f"prosody_confusion_{target}"
    with figures.style():
        fig, axes = figures.plt.subplots(
            nrows, cols, figsize=(2.8 * cols, 3.0 * nrows), squeeze=False, layout="constrained"
        )
        for ax in axes.flat[len(names) :]:
            ax.axis("off")
        for ax, name in zip(axes.flat, names, strict=False):
            r = rows[name]
            cm = np.asarray(r.curves["confusion"], dtype=float)
            cm = cm / cm.sum(1, keepdims=True).clip(min=1)  # rows: true class, normalised
            image = ax.imshow(cm, vmin=0, vmax=1, cmap="Blues")
            ax.grid(False)
            classes = r.curves["classes"]
            if len(classes) <= 8:
                ticks = range(len(classes))
                short = [c.replace("_arousal", "") for c in classes]
                ax.set_xticks(ticks, short, rotation=45, ha="right", fontsize=6)
                ax.set_yticks(ticks, short, fontsize=6)
                for i in ticks:
                    for j in ticks:
                        color = "white" if cm[i, j] > 0.5 else "black"
                        ax.text(
                            j,
                            i,
                            f"{cm[i, j]:.2f}",
                            ha="center",
                            va="center",
                            fontsize=5,
                            color=color,
                        )
            else:
                ax.set_xticks([])
                ax.set_yticks([])
            acc = r.metrics.get("accuracy", float("nan"))
            ax.set_title(f"{name}  acc {100 * acc:.0f}%", fontsize=7)
        if names:  # one scale for every panel: the share of each true class
            bar = fig.colorbar(image, ax=axes, shrink=0.8)
            bar.set_label("fraction of the true class", fontsize=7)
            bar.ax.tick_params(labelsize=6)
        fig.supxlabel("predicted", fontsize=7)
        fig.supylabel("true", fontsize=7)
        figures.save(fig, fig_dir, stem, formats)
    return Figure(
        stem,
        f"Test confusion matrices of {target} classification on seen speakers (linear "
        "classifier on each loss's embeddings, lowest seed; rows normalised).",
    )
