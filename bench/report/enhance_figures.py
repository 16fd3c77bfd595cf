"""Figures of the enhancement task: PESQ-WB by input SNR and by noise type (one line per
method), and clean / noisy / enhanced spectrograms of one test utterance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import figures
from bench.report.figures import Figure
from bench.report.task_figures import task_figures
from bench.store import Record


def method_label(m: dict[str, str]) -> str:
    return m["enhancer"] if m.get("enh_loss", "-") == "-" else f"{m['enhancer']}/{m['enh_loss']}"


def _by(records: list[Record], key: str) -> dict[str, dict[Any, list[float]]]:
    """method label -> value of per-utterance ``key`` -> PESQ-WB of those utterances,
    pooled over seeds (failed PESQ left out)."""
    out: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        keys, values = r.curves.get(key), r.curves.get("utt_pesq_wb")
        if not keys or not values:
            continue
        for k, v in zip(keys, values, strict=True):
            if k is not None and v is not None:
                out[method_label(r.method)][k].append(v)
    return out


def _lines(ax, series, xs, positions) -> None:
    for n, (label, points) in enumerate(sorted(series.items())):
        ys = [np.mean(points[x]) if points.get(x) else np.nan for x in xs]
        ax.plot(
            positions,
            ys,
            marker="o",
            label=label,
            color=figures.PALETTE[n % len(figures.PALETTE)],
            linestyle="-" if n < len(figures.PALETTE) else "--",
        )
    ax.set_ylabel("PESQ-WB (MOS-LQO) ↑")
    ax.legend(fontsize=6, ncol=2)


@task_figures("enhance")
def draw(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.curves.get("utt_pesq_wb")]
    if not records:
        return
    by_snr = _by(records, "utt_snr_db")
    snrs = sorted({s for pts in by_snr.values() for s in pts})
    if snrs:
        with figures.style():
            fig, ax = figures.plt.subplots(figsize=(5.0, 3.2))
            _lines(ax, by_snr, snrs, snrs)
            ax.set_xlabel("input SNR (dB)")
            figures.save(fig, fig_dir, "enhance_pesq_by_snr", formats)
        yield Figure(
            "enhance_pesq_by_snr",
            "PESQ-WB of each method against the input SNR of the test mixtures "
            "(mean over the utterances at each SNR, pooled over seeds).",
        )
    by_noise = _by(records, "utt_noise_type")
    kinds = sorted({k for pts in by_noise.values() for k in pts})
    if kinds:
        with figures.style():
            fig, ax = figures.plt.subplots(figsize=(5.0, 3.2))
            _lines(ax, by_noise, kinds, list(range(len(kinds))))
            ax.set_xticks(range(len(kinds)), kinds)
            ax.set_xlabel("noise type")
            figures.save(fig, fig_dir, "enhance_pesq_by_noise", formats)
        yield Figure(
            "enhance_pesq_by_noise",
            "PESQ-WB of each method per noise type of the test mixtures "
            "(mean over the utterances of each type, pooled over seeds).",
        )
    panel = _spectrograms(records, fig_dir, formats)
    if panel:
        yield panel


def _spectrogram(ax, wave: np.ndarray, title: str, sample_rate: int = 16000) -> None:
    ax.specgram(wave + 1e-9, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma", vmin=-120)
    ax.set_title(title, fontsize=7)
    ax.set_yticks([0, 4000, 8000], ["0", "4", "8"])
    ax.tick_params(labelsize=6)


def _spectrograms(records: list[Record], fig_dir: Path, formats: Sequence[str]) -> Figure | None:
    """Clean, noisy and each method's enhanced audio of the saved example utterance
    (first seed of each method)."""
    run_dir = fig_dir.parent
    examples: dict[str, Path] = {}
    for r in sorted(records, key=lambda r: r.seed):
        rel = (r.curves.get("example") or [None])[0]
        label = method_label(r.method)
        if rel and label not in examples and (run_dir / rel).exists():
            examples[label] = run_dir / rel
    if not examples:
        return None
    labels = sorted(examples, key=lambda x: (x != "identity", x))
    with np.load(examples[labels[0]]) as first:
        clean, noisy, uid = first["clean"], first["noisy"], str(first["id"])
    panels = [("clean", clean), ("noisy input", noisy)]
    for label in labels:
        if label == "identity":
            continue
        with np.load(examples[label]) as data:
            panels.append((label, data["enhanced"]))
    cols = 3
    rows = -(-len(panels) // cols)
    with figures.style():
        fig, axes = figures.plt.subplots(
            rows, cols, figsize=(7.2, 1.7 * rows), squeeze=False, sharex=True, sharey=True
        )
        for ax, (title, wave) in zip(axes.flat, panels, strict=False):
            _spectrogram(ax, wave, title)
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        for ax in axes[:, 0]:
            ax.set_ylabel("kHz", fontsize=7)
        for ax in axes[-1]:
            ax.set_xlabel("s", fontsize=7)
        figures.save(fig, fig_dir, "enhance_spectrograms", formats)
    return Figure(
        "enhance_spectrograms",
        f"Spectrograms of test utterance {uid}: clean, noisy input, and each method's output "
        "(first seed).",
    )
