"""Figures of the enhancement task: PESQ-WB by input SNR (one line per method) and by noise
type (categories: markers side by side, no lines), and clean / noisy / enhanced
spectrograms of one test utterance on one colour scale with its dB colourbar."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import figure_helpers as helpers
from bench.report import figures
from bench.report.figures import Figure
from bench.report.stats import Summary, mean_ci
from bench.report.task_figures import task_figures
from bench.store import Record


def method_label(m: dict[str, str]) -> str:
    return m["enhancer"] if m.get("enh_loss", "-") == "-" else f"{m['enhancer']}/{m['enh_loss']}"


def _by(records: list[Record], key: str) -> dict[str, dict[Any, dict[int, list[float]]]]:
    """method label -> value of per-utterance ``key`` -> seed -> PESQ-WB of those
    utterances (failed PESQ left out)."""
    out: dict[str, dict[Any, dict[int, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for r in records:
        keys, values = r.curves.get(key), r.curves.get("utt_pesq_wb")
        if not keys or not values:
            continue
        for k, v in zip(keys, values, strict=True):
            if k is not None and v is not None:
                out[method_label(r.method)][k][r.seed].append(v)
    return out


def _summaries(points: dict[Any, dict[int, list[float]]], xs: list) -> list[Summary]:
    """Per x: mean over seeds of each seed's mean PESQ, with its Student-t interval."""
    return [mean_ci([float(np.mean(v)) for v in points.get(x, {}).values()]) for x in xs]


def _series(ax, series, xs, positions, styles, categorical: bool) -> list[Summary]:
    """One series per method: a line over a numeric axis; over categories, markers only,
    dodged sideways per method so that the whiskers do not hide each other."""
    labels = [label for label in styles if label in series]
    offsets = helpers.dodge(len(labels), 0.6 if categorical else 0.0)
    drawn = []
    for label, offset in zip(labels, offsets, strict=True):
        stats = _summaries(series[label], xs)
        x = [p + offset for p in positions]
        helpers.mean_points(ax, x, stats, styles[label], label, line=not categorical, ms=4)
        drawn += stats
    helpers.pad_ylim(ax, helpers.summary_ends(drawn))
    ax.set_ylabel("PESQ-WB (MOS-LQO) ↑")
    ax.legend(fontsize=6, ncol=2)
    return drawn


@task_figures("enhance")
def draw(
    records: list[Record], fig_dir: Path, formats: Sequence[str] = figures.FORMATS
) -> Iterator[Figure]:
    records = [r for r in records if r.curves.get("utt_pesq_wb")]
    if not records:
        return
    styles = helpers.method_styles(sorted({method_label(r.method) for r in records}))
    by_snr = _by(records, "utt_snr_db")
    snrs = sorted({s for pts in by_snr.values() for s in pts})
    if snrs:
        with figures.style():
            fig, ax = figures.plt.subplots(figsize=(5.0, 3.2))
            drawn = _series(ax, by_snr, snrs, snrs, styles, categorical=False)
            ax.set_xlabel("input SNR (dB)")
            figures.save(fig, fig_dir, "enhance_pesq_by_snr", formats)
        yield Figure(
            "enhance_pesq_by_snr",
            "PESQ-WB of each method against the input SNR of the test mixtures "
            "(mean over seeds of the mean over the utterances at each SNR; "
            f"{helpers.spread_note(drawn)}).",
        )
    by_noise = _by(records, "utt_noise_type")
    kinds = sorted({k for pts in by_noise.values() for k in pts})
    if kinds:
        with figures.style():
            fig, ax = figures.plt.subplots(figsize=(5.0, 3.2))
            drawn = _series(ax, by_noise, kinds, list(range(len(kinds))), styles, True)
            ax.set_xticks(range(len(kinds)), kinds)
            ax.set_xlim(-0.5, len(kinds) - 0.5)
            ax.grid(False, axis="x")
            ax.set_xlabel("noise type")
            figures.save(fig, fig_dir, "enhance_pesq_by_noise", formats)
        yield Figure(
            "enhance_pesq_by_noise",
            "PESQ-WB of each method per noise type of the test mixtures (categories: one "
            "marker per method, side by side; mean over seeds of the mean over the utterances "
            f"of each type; {helpers.spread_note(drawn)}).",
        )
    panel = _spectrograms(records, fig_dir, formats)
    if panel:
        yield panel


FLOOR_DB = -120.0  # the colour scale's bottom: quieter bins are drawn as black


def _spectrogram(ax, wave: np.ndarray, title: str, sample_rate: int = 16000):
    """Draw one spectrogram; return its image (for the shared colour scale)."""
    with np.errstate(divide="ignore"):  # exact digital silence: -inf dB, drawn at the floor
        *_, image = ax.specgram(
            wave + 1e-9, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma", vmin=FLOOR_DB
        )
    ax.set_title(title, fontsize=7)
    ax.grid(False)
    ax.set_yticks([0, 4000, 8000], ["0", "4", "8"])
    ax.tick_params(labelsize=6)
    return image


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
        images = [
            _spectrogram(ax, wave, title)
            for ax, (title, wave) in zip(axes.flat, panels, strict=False)
        ]
        top = max(float(np.nanmax(im.get_array())) for im in images)
        for im in images:  # one colour scale for every panel, so that levels compare
            im.set_clim(FLOOR_DB, top)
        bar = fig.colorbar(images[0], ax=axes, shrink=0.8, pad=0.02)
        bar.set_label("power spectral density (dB/Hz, re full scale)", fontsize=7)
        bar.ax.tick_params(labelsize=6)
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
        f"(first seed); one colour scale in dB for all panels, {FLOOR_DB:.0f} dB and below "
        "black.",
    )
