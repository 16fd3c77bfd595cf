"""Figures read right: a distinct colour and marker per method, categories without joining
lines, colourbars on images, no error bar from one seed, and no value cut by an axis limit.
Each property is checked on the real drawers (draw_task_figures) with hand-made records."""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.container import ErrorbarContainer

from bench.report import figure_helpers as helpers
from bench.report import figures
from bench.report.task_figures import draw_task_figures
from bench.store import Record, stable_hash


@pytest.fixture
def drawn(monkeypatch):
    """Every figure a drawer saves, by stem (still saved to disk, then inspectable)."""
    out = {}
    save = figures.save

    def keep(fig, fig_dir, stem, formats=figures.FORMATS):
        out[stem] = fig
        save(fig, fig_dir, stem, formats)

    monkeypatch.setattr(figures, "save", keep)
    return out


def _record(task, method, seed, metrics=None, curves=None) -> Record:
    return Record(
        run_id="r",
        task=task,
        method=method,
        config={},
        seed=seed,
        scale="quick",
        metrics=metrics or {},
        curves=curves or {},
        cell_key=stable_hash([task, method, seed]),
    )


def _has_errorbars(ax) -> bool:
    return any(isinstance(c, ErrorbarContainer) for c in ax.containers) or any(
        isinstance(c, LineCollection) for c in ax.collections
    )


# ---- the palette -------------------------------------------------------------------------


def test_method_styles_give_distinct_colour_and_marker_pairs_for_1_to_30_methods():
    for n in range(1, 31):
        labels = [f"method{k}" for k in range(n)]
        styles = helpers.method_styles(labels)
        assert list(styles) == labels
        assert len(set(styles.values())) == n, n
        if n <= len(helpers.COLOURS):  # every colour differs while there are colours left
            assert len({s.colour for s in styles.values()}) == n
        if n <= len(helpers.MARKERS):
            assert len({s.marker for s in styles.values()}) == n
    first = helpers.method_styles([f"m{k}" for k in range(8)])
    assert [s.colour for s in first.values()] == [c.upper() for c in figures.PALETTE]
    assert all(mcolors.is_color_like(c) for c in helpers.COLOURS)
    assert helpers.method_styles(["b", "a", "b"]) == helpers.method_styles(["b", "a"])


def test_every_style_up_to_the_cap_is_distinct_and_beyond_is_refused():
    cap = len(helpers.COLOURS) * len(helpers.MARKERS)
    assert len({helpers.style_at(k) for k in range(cap)}) == cap
    with pytest.raises(ValueError, match="series in one figure"):
        helpers.method_styles([str(k) for k in range(cap + 1)])


# ---- enhance: 9 methods, categories, spectrogram colourbar -------------------------------

METHODS = [
    ("identity", "-"), ("wiener", "-"), ("specsub", "-"),
    ("mask", "l1"), ("mask", "mrstft"), ("mask", "neg_sisdr"),
    ("convtasnet", "l1"), ("convtasnet", "mrstft"), ("convtasnet", "neg_sisdr"),
]  # fmt: skip
NOISES = ["babble", "hum", "white"]


def _enhance_records(tmp_path, seeds=(0,)) -> list[Record]:
    rng = np.random.default_rng(0)
    wave = rng.normal(0, 0.1, 4000).astype(np.float32)
    (tmp_path / "ex").mkdir()
    records = []
    for k, (enhancer, loss) in enumerate(METHODS):
        rel = f"ex/{k}.npz"
        np.savez(tmp_path / rel, clean=wave, noisy=wave + 0.05, enhanced=wave * 0.5, id="u0")
        for seed in seeds:
            curves = {
                "utt_noise_type": NOISES * 2,
                "utt_snr_db": [0, 0, 0, 5, 5, 5],
                "utt_pesq_wb": list(1.0 + 0.1 * k + 0.05 * seed + rng.uniform(0, 0.1, 6)),
                "example": [rel],
            }
            method = {"enhancer": enhancer, "enh_loss": loss}
            records.append(_record("enhance", method, seed, {"pesq_wb": 1.5}, curves))
    return records


def test_enhance_methods_differ_categories_have_no_lines_and_spectrograms_a_db_colourbar(
    tmp_path, drawn
):
    draw_task_figures("enhance", _enhance_records(tmp_path), tmp_path / "figures", ("png",))
    assert set(drawn) == {"enhance_pesq_by_snr", "enhance_pesq_by_noise", "enhance_spectrograms"}

    (ax,) = drawn["enhance_pesq_by_noise"].axes
    series = [line for line in ax.lines if line.get_label() in ax.get_legend_handles_labels()[1]]
    assert len(series) == len(METHODS)
    assert len({(line.get_color(), line.get_marker()) for line in series}) == len(METHODS)
    for line in ax.lines:  # nothing joins one category to the next
        if len(line.get_xdata()) > 1:
            assert line.get_linestyle() == "None", line.get_label()
    xs = [x for line in series for x in line.get_xdata()]
    assert len(set(xs)) == len(METHODS) * len(NOISES)  # dodged: no two markers on one x
    assert not _has_errorbars(ax)  # one seed: no whiskers

    (snr_ax,) = drawn["enhance_pesq_by_snr"].axes  # numeric SNR keeps its lines
    assert any(line.get_linestyle() == "-" for line in snr_ax.lines)

    fig = drawn["enhance_spectrograms"]
    bars = [a for a in fig.axes if getattr(a, "_colorbar", None) is not None]
    assert len(bars) == 1 and "dB" in bars[0].get_ylabel()
    images = [im for a in fig.axes for im in a.get_images()]
    assert len({im.get_clim() for im in images}) == 1  # one scale for every panel


def test_two_seeds_draw_whiskers_on_the_categories(tmp_path, drawn):
    draw_task_figures(
        "enhance", _enhance_records(tmp_path, seeds=(0, 1)), tmp_path / "figures", ("png",)
    )
    (ax,) = drawn["enhance_pesq_by_noise"].axes
    assert _has_errorbars(ax)


# ---- one seed, no whiskers; percentages at 100 inside the axes ---------------------------


def _asr_records(seeds, wer=1.0) -> list[Record]:
    out = []
    for frontend, shift in (("logmel", 0.0), ("wav2vec", -0.2)):
        for seed in seeds:
            metrics = {
                "test_wer": wer + shift + 0.01 * seed,
                "test_cer": 0.5 + 0.01 * seed,
                "test_cer_lm": 0.4 + 0.02 * seed,
                "labeled_seconds": 300.0,
            }
            method = {"language": "en", "frontend": frontend, "labeled": "all"}
            out.append(_record("asr", method, seed, metrics))
    return out


def test_one_seed_draws_no_error_bar_and_says_so(tmp_path, drawn):
    figs = draw_task_figures("asr", _asr_records([0]), tmp_path, ("png",))
    for stem in ("asr_wer_vs_labeled", "asr_cer"):
        for ax in drawn[stem].axes:
            assert not _has_errorbars(ax), stem
    assert all("1 seed, no interval" in f.caption for f in figs)
    drawn.clear()
    figs = draw_task_figures("asr", _asr_records([0, 1]), tmp_path, ("png",))
    assert all(_has_errorbars(drawn[s].axes[0]) for s in ("asr_wer_vs_labeled", "asr_cer"))
    assert not any("no interval" in f.caption for f in figs)


def test_calibration_ece_bars_of_one_seed_have_no_whiskers(tmp_path, drawn):
    curves = {
        "reliability_count": [0, 5, 10],
        "reliability_conf_sum": [0.0, 3.0, 9.0],
        "reliability_correct_sum": [0.0, 2.0, 9.0],
        "coverage": [0.5, 1.0],
        "risk": [0.0, 0.1],
    }
    records = [
        _record("calibration", {"classifier": "cnn", "calibrator": c}, 0, {"ece": 0.02}, curves)
        for c in ("none", "temperature")
    ]
    figs = draw_task_figures("calibration", records, tmp_path, ("png",))
    (ax,) = drawn["calibration_ece"].axes
    assert ax.patches and not _has_errorbars(ax)
    assert "1 seed, no interval" in figs[-1].caption


def test_a_wer_of_100_percent_is_drawn_inside_the_axes_with_its_whole_marker(tmp_path, drawn):
    draw_task_figures("asr", _asr_records([0], wer=1.0), tmp_path, ("png",))
    fig = drawn["asr_wer_vs_labeled"]
    (ax,) = fig.axes
    bottom, top = ax.get_ylim()
    assert bottom < 0 and top > 100  # 0 and 100 are strictly inside
    fig.canvas.draw()
    for line in ax.lines:
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
            _, y_px = ax.transData.transform((x, y))
            _, top_px = ax.transData.transform((x, top))
            radius_px = line.get_markersize() / 2 * fig.dpi / 72
            assert top_px - y_px > radius_px, (line.get_label(), y)


def test_confusion_matrices_have_one_colourbar(tmp_path, drawn):
    curves = {"confusion": [[3, 1], [0, 4]], "classes": ["low", "high"]}
    records = [
        _record(
            "prosody", {"loss": loss, "miner": "-", "target": "tone"}, 0, {"accuracy": 0.8}, curves
        )
        for loss in ("contrastive", "ntxent")
    ]
    draw_task_figures("prosody", records, tmp_path, ("png",))
    fig = drawn["prosody_confusion_tone"]
    bars = [a for a in fig.axes if getattr(a, "_colorbar", None) is not None]
    assert len(bars) == 1 and bars[0].get_ylabel() == "fraction of the true class"


def test_a_method_keeps_its_colour_and_marker_across_the_figures_of_a_task(tmp_path, drawn):
    records = []
    for k, forcing in enumerate(("teacher", "linear", "word_kd", "sequence_kd")):
        curves = {
            "position_error": [0.1, 0.2 + 0.01 * k],
            "position_count": [50, 50],
            "teacher_prob": [1.0, 0.9, 0.8] if forcing == "linear" else [1.0, 1.0, 1.0],
        }
        metrics = {"test_per_beam": 0.2, "teacher_per_beam": 0.15}
        records.append(_record("g2p", {"arch": "gru", "forcing": forcing}, 0, metrics, curves))
    draw_task_figures("g2p", records, tmp_path, ("png",))
    assert set(drawn) == {"g2p_error_by_position", "g2p_schedules", "g2p_distillation"}
    looks = {}
    for stem in ("g2p_error_by_position", "g2p_schedules"):
        for line in drawn[stem].axes[0].lines:
            style = (mcolors.to_hex(line.get_color()), line.get_marker())
            assert looks.setdefault(line.get_label(), style) == style, (stem, line.get_label())
    assert len(set(looks.values())) == 4
    bars = drawn["g2p_distillation"].axes[0].patches  # teacher, teacher forcing, word, sequence
    word_kd = mcolors.to_hex(bars[2].get_facecolor())
    assert word_kd == looks["word_kd"][0].lower()
