"""The learned layer weights of a pretrained upstream of your own (``frontend=hf``).

Each downstream over an hf upstream learns a softmax weight per hidden layer (SUPERB);
this figure shows them per row, averaged over seeds, against the uniform start 1/L, and
lists the numbers under the figure. Drawn from the records' ``layer_weights`` curve (the
SSL probe's ``probe_layer_weights``); tasks without hf rows get no figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from bench.report import figures
from bench.report.figures import Figure
from bench.report.task_figures import task_figures
from bench.store import Record

TASKS = ("ssl_phoneme", "asr", "speaker", "prosody", "augment")
KEYS = ("layer_weights", "probe_layer_weights")


def layer_weights(record: Record) -> list[float] | None:
    """The record's learned layer weights if it ran over an hf upstream, else None."""
    if record.status != "ok" or record.method.get("frontend") != "hf":
        return None
    for key in KEYS:
        if key in record.curves:
            return [float(w) for w in record.curves[key]]
    return None


def _label(method: dict[str, str]) -> str:
    rest = [f"{k}={v}" for k, v in method.items() if k != "frontend" and v != "-"]
    return ", ".join(rest) or "untrained downstream"


@task_figures(*TASKS)
def draw_layer_weights(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    """One figure per task with hf rows: mean learned weight per layer, per row."""
    rows: dict[str, list[list[float]]] = defaultdict(list)
    for r in records:
        weights = layer_weights(r)
        if weights is not None:
            rows[_label(r.method)].append(weights)
    rows = {k: v for k, v in rows.items() if len({len(w) for w in v}) == 1}
    if not rows:
        return
    task = records[0].task
    means = {k: np.mean(v, axis=0) for k, v in rows.items()}
    with figures.style():
        fig, ax = plt.subplots(figsize=(6.0, 3.2))
        markers = "osD^vP*Xhp<>"
        for i, (name, mean) in enumerate(means.items()):
            colour = figures.PALETTE[i % len(figures.PALETTE)]
            ax.plot(
                range(len(mean)),
                mean,
                marker=markers[i % len(markers)],
                color=colour,
                label=f"{name} (n={len(rows[name])})",
            )
        n_layers = max(len(m) for m in means.values())
        ax.axhline(1.0 / n_layers, color="grey", linestyle=":", label="uniform start 1/L")
        ax.set_xticks(range(n_layers))
        ax.set_xlabel("hidden layer (0: input to the first block)")
        ax.set_ylabel("learned weight (softmax)")
        top = max(float(m.max()) for m in means.values())
        ax.set_ylim(0.0, max(top, 1.0 / n_layers) * 1.15)
        ax.legend(fontsize=6, loc="best")
        stem = f"{task}_layer_weights"
        figures.save(fig, fig_dir, stem, formats)
    header = "| row | " + " | ".join(f"L{i}" for i in range(n_layers)) + " |"
    lines = [header, "|---|" + "---:|" * n_layers]
    for name, mean in means.items():
        lines.append(f"| {name} | " + " | ".join(f"{w:.3f}" for w in mean) + " |")
    yield Figure(
        stem,
        f"{task}: learned weight of each hidden layer of the hf upstream (mean over seeds; "
        f"dotted: the uniform start 1/{n_layers})",
        text="\n".join(lines),
    )
