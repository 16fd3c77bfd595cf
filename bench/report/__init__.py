"""Reports from records alone: report.md, self-contained report.html, tables.tex, tests.csv,
figures/.

Nothing here trains or evaluates: every number comes from the run's records.jsonl and
per-item results (items/), so a
report can be regenerated at any time with ``python run_all.py report DIR``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.report.baseline_tests import write_tests_csv
from bench.report.figures import FORMATS
from bench.report.model import ReportData, build_report_data
from bench.report.render_html import render_html
from bench.report.render_latex import render_latex
from bench.report.render_markdown import render_markdown
from bench.report.task_figures import draw_task_figures
from bench.store import latest_records, write_atomic


def write_report(
    run_dir: str | Path, figures: bool = True, formats: Sequence[str] = FORMATS
) -> dict[str, Path]:
    """Write the report files of ``run_dir`` (figures in ``formats`` unless ``figures`` is
    False); returns their paths by kind."""
    run_dir = Path(run_dir)
    data: ReportData = build_report_data(run_dir, figures=figures, formats=formats)
    paths = {
        "markdown": run_dir / "report.md",
        "html": run_dir / "report.html",
        "latex": run_dir / "tables.tex",
    }
    write_atomic(paths["markdown"], render_markdown(data))
    write_atomic(paths["html"], render_html(data, run_dir))
    write_atomic(paths["latex"], render_latex(data))
    paths["tests"] = write_tests_csv(run_dir / "tests.csv", [s.table for s in data.sections])
    return paths


def draw_figures(run_dir: str | Path, formats: Sequence[str] = FORMATS) -> list[str]:
    """Redraw every task's figures from the run's finished records alone (no tables);
    returns the stems written under ``run_dir/figures``."""
    run_dir = Path(run_dir)
    records = [r for r in latest_records(run_dir) if r.status == "ok"]
    if not records:
        raise FileNotFoundError(f"{run_dir}: no finished records in records.jsonl")
    stems = []
    for task_name in dict.fromkeys(r.task for r in records):
        ok = [r for r in records if r.task == task_name]
        stems += [f.stem for f in draw_task_figures(task_name, ok, run_dir / "figures", formats)]
    return stems
