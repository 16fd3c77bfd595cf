"""Figures of calibration runs: reliability diagrams, risk-coverage curves, ECE with CIs.

Drawn from records alone: reliability bins are pooled over seeds (their counts add up),
risk-coverage curves are averaged over seeds on a common coverage grid.
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


def _group(records: list[Record]) -> dict[str, dict[str, list[Record]]]:
    """{model label: {calibrator: [records over seeds]}}."""
    out: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        model = ", ".join(f"{k}={v}" for k, v in r.method.items() if k != "calibrator") or "logits"
        out[model][r.method.get("calibrator", "?")].append(r)
    return out


@task_figures("calibration", "calibrate_logits")
def draw(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if "reliability_count" in r.curves]
    if not records:
        return
    groups = _group(records)
    yield _reliability(groups, fig_dir, formats)
    yield _risk_coverage(groups, fig_dir, formats)
    yield _ece_bars(groups, fig_dir, formats)


def _reliability(groups, fig_dir: Path, formats: Sequence[str]) -> Figure:
    models = list(groups)
    calibrators = list(dict.fromkeys(c for g in groups.values() for c in g))
    with figures.style():
        fig, axes = figures.plt.subplots(
            len(models),
            len(calibrators),
            figsize=(2.1 * len(calibrators), 2.2 * len(models)),
            squeeze=False,
            sharex=True,
            sharey=True,
        )
        for i, model in enumerate(models):
            for j, cal in enumerate(calibrators):
                ax = axes[i][j]
                recs = groups[model].get(cal, [])
                if not recs:
                    ax.set_axis_off()
                    continue
                count = np.sum([r.curves["reliability_count"] for r in recs], axis=0)
                conf = np.sum([r.curves["reliability_conf_sum"] for r in recs], axis=0)
                correct = np.sum([r.curves["reliability_correct_sum"] for r in recs], axis=0)
                m = len(count)
                edges = np.arange(m + 1) / m
                with np.errstate(invalid="ignore", divide="ignore"):
                    acc, mean_conf = correct / count, conf / count
                centers = (edges[:-1] + edges[1:]) / 2
                filled = count > 0
                ax.bar(
                    centers[filled],
                    acc[filled],
                    width=1 / m,
                    edgecolor="white",
                    color=figures.PALETTE[0],
                    label="accuracy",
                )
                ax.bar(
                    centers[filled],
                    (mean_conf - acc)[filled],
                    bottom=acc[filled],
                    width=1 / m,
                    color=figures.PALETTE[3],
                    alpha=0.35,
                    label="gap to confidence",
                )
                ax.plot([0, 1], [0, 1], "k--", lw=0.8)
                ax.set_ylim(0, 1.06)  # a bin at accuracy 1 stays below the top edge
                ece = float(
                    np.nansum(np.abs(acc - mean_conf)[filled] * count[filled]) / count.sum()
                )
                ax.text(
                    0.04,
                    0.9,
                    f"pooled ECE {100 * ece:.2f}%",
                    transform=ax.transAxes,
                    fontsize=7,
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1},
                )
                if i == 0:
                    ax.set_title(cal)
                if j == 0:
                    ax.set_ylabel(f"{model}\naccuracy")
                if i == len(models) - 1:
                    ax.set_xlabel("confidence")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.04))
        figures.save(fig, fig_dir, "calibration_reliability", formats)
    return Figure(
        "calibration_reliability",
        "Reliability diagrams on the test split (bins and ECE pooled over seeds); "
        "dashed: perfect calibration, shaded: gap between mean confidence and accuracy.",
    )


def _risk_coverage(groups, fig_dir: Path, formats: Sequence[str]) -> Figure:
    models = list(groups)
    styles = helpers.method_styles(dict.fromkeys(c for g in groups.values() for c in g))
    with figures.style():
        fig, axes = figures.plt.subplots(
            1, len(models), figsize=(3.4 * len(models), 2.8), squeeze=False
        )
        for ax, model in zip(axes[0], models, strict=True):
            for cal, recs in groups[model].items():
                coverage = np.asarray(recs[0].curves["coverage"])
                risk = np.mean([r.curves["risk"] for r in recs], axis=0)
                style = styles[cal]
                every = max(1, len(coverage) // 8)  # a few markers tell the curves apart
                ax.plot(
                    100 * coverage,
                    100 * risk,
                    color=style.colour,
                    marker=style.marker,
                    markevery=(styles_offset(style, every), every),
                    ms=3,
                    label=cal,
                )
            ax.set_title(model)
            ax.set_xlabel("coverage (%)")
            ax.set_ylabel("selective risk (%)")
        axes[0][-1].legend()
        figures.save(fig, fig_dir, "calibration_risk_coverage", formats)
    return Figure(
        "calibration_risk_coverage",
        "Risk-coverage curves on the test split (mean over seeds): error rate among the "
        "most confident predictions kept; lower is better.",
    )


def styles_offset(style: helpers.Style, every: int) -> int:
    """Start of a curve's markers, staggered per style so markers of close curves differ."""
    return helpers.MARKERS.index(style.marker) % every


def _ece_bars(groups, fig_dir: Path, formats: Sequence[str]) -> Figure:
    models = list(groups)
    calibrators = list(dict.fromkeys(c for g in groups.values() for c in g))
    width = 0.8 / max(1, len(models))
    styles = helpers.method_styles(models)
    drawn: list[Summary] = []
    with figures.style():
        fig, ax = figures.plt.subplots(figsize=(1.0 + 0.9 * len(calibrators), 2.8))
        x = np.arange(len(calibrators))
        for i, model in enumerate(models):
            stats = [
                mean_ci([r.metrics.get("ece") for r in groups[model].get(cal, [])])
                for cal in calibrators
            ]
            helpers.mean_bars(
                ax,
                x + i * width - 0.4 + width / 2,
                stats,
                width,
                styles[model].colour,
                model,
                100.0,
            )
            drawn += stats
        ax.set_xticks(x, calibrators)
        ax.set_ylabel("ECE (%) ↓")
        ax.legend()
        figures.save(fig, fig_dir, "calibration_ece", formats)
    return Figure(
        "calibration_ece",
        f"Test ECE per calibrator, mean over seeds ({helpers.spread_note(drawn)}).",
    )
