"""Task figures are registered on the report side: every task that has figures has a
drawer, drawers take the file formats as a parameter, and the report never asks a task."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench import registry
from bench.report import draw_figures, figures
from bench.report.model import build_report_data
from bench.report.task_figures import (
    _DRAWERS,
    draw_task_figures,
    drawers,
    task_figures,
    tasks_with_figures,
)
from bench.store import Record, RunStore, stable_hash
from bench.tasks.base import get_task

REPORT = Path(__file__).parents[2] / "bench" / "report"

# the tasks whose figures() method drew figures before the drawers moved to the report
TASKS_WITH_FIGURES = (
    "asr",
    "augment",
    "calibrate_logits",
    "calibration",
    "enhance",
    "g2p",
    "prosody",
    "speaker",
    "ssl_phoneme",
)


def test_every_task_that_had_figures_has_a_drawer():
    for task in TASKS_WITH_FIGURES:
        assert drawers(task), f"no figure drawer registered for task {task!r}"
    assert set(TASKS_WITH_FIGURES) <= set(tasks_with_figures())


def test_drawers_are_registered_for_real_task_names_only():
    registry.load_all()
    unknown = set(tasks_with_figures()) - set(registry.names("task"))
    assert not unknown, f"drawers registered for unknown tasks {sorted(unknown)} (a typo?)"


def test_report_modules_import_no_task_module_and_no_figure_from_tasks():
    """The report sits above the tasks: it may look a task up (get_task), nothing more."""
    for path in sorted(REPORT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench.tasks"):
                assert node.module == "bench.tasks.base", f"{path.name} imports {node.module}"
                names = {a.name for a in node.names}
                assert names <= {"get_task", "Task"}, f"{path.name} imports {names} from tasks"


def _record(task: str, seed: int, value: float) -> Record:
    method = {"classifier": "cnn", "calibrator": "none"}
    return Record(
        run_id="r",
        task=task,
        method=method,
        config={},
        seed=seed,
        scale="quick",
        metrics={"ece": value, "accuracy": 0.9},
        cell_key=stable_hash([task, seed]),
    )


@pytest.fixture
def fake_drawer(monkeypatch):
    """The calibration task with one fake drawer in place of its own, and a figures()
    method that fails if anyone still calls it."""
    registry.load_all()
    drawn = []

    def draw(records, fig_dir, formats=figures.FORMATS):
        drawn.append((len(records), tuple(formats)))
        with figures.style():
            fig, ax = figures.plt.subplots(figsize=(2, 2))
            ax.plot([r.metrics["ece"] for r in records])
            figures.save(fig, fig_dir, "fake_scores", formats)
        yield figures.Figure("fake_scores", "ECE per seed")

    def no_task_figures(self, records, fig_dir):
        raise AssertionError("the report called task.figures")

    drawers("calibration")  # all drawers loaded before one is swapped
    monkeypatch.setitem(_DRAWERS, "calibration", {})
    task_figures("calibration")(draw)
    monkeypatch.setattr(type(get_task("calibration")), "figures", no_task_figures, raising=False)
    return drawn


def test_report_draws_through_the_registry_in_the_formats_asked(tmp_path, fake_drawer):
    drawn = fake_drawer
    store = RunStore(tmp_path)
    for seed in range(2):
        store.append(_record("calibration", seed, 0.05 * (seed + 1)))
    data = build_report_data(tmp_path, figures=True, formats=("png",))
    (section,) = data.sections
    assert [f.stem for f in section.figures] == ["fake_scores"] and drawn == [(2, ("png",))]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["fake_scores.png"]
    assert draw_figures(tmp_path, ("pdf",)) == ["fake_scores"]
    assert (tmp_path / "figures" / "fake_scores.pdf").exists()
    assert figures.FORMATS == ("pdf", "png")  # nothing narrowed a module-wide default


def test_no_records_draw_nothing_and_unknown_format_is_refused(tmp_path, fake_drawer):
    drawn = fake_drawer
    assert draw_task_figures("calibration", [], tmp_path) == [] and drawn == []
    assert draw_task_figures("task_without_figures", [_record("x", 0, 1.0)], tmp_path) == []
    fig, _ = figures.plt.subplots()
    with pytest.raises(ValueError, match="unknown figure format"):
        figures.save(fig, tmp_path, "x", ("svg",))


def test_a_figures_markdown_note_reaches_both_reports():
    """A drawer's ``Figure.text`` (e.g. the zoo's harm table) is shown under the figure: as
    is in report.md, and in report.html with its pipe table as an HTML table."""
    from bench.report.render_html import _markdown_block

    note = "| metric | harmed |\n|---|---|\n| ece | 6/52 = 12% [5, 23] |\n\nSpearman ρ = 0.91"
    html_note = _markdown_block(note)
    assert html_note == (
        "<table><tr><th>metric</th><th>harmed</th></tr>"
        "<tr><td>ece</td><td>6/52 = 12% [5, 23]</td></tr></table><p>Spearman ρ = 0.91</p>"
    )
    assert _markdown_block("") == ""
    assert "&lt;b&gt;" in _markdown_block("<b>")  # escaped, never raw HTML
