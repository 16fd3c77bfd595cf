"""Reports from records alone: report.md, self-contained report.html, tables.tex, figures/.

Nothing here trains or evaluates: every number comes from the run's records.jsonl, so a
report can be regenerated at any time with ``python run_all.py report DIR``.
"""

from __future__ import annotations

from pathlib import Path

from bench.report.model import ReportData, build_report_data
from bench.report.render_html import render_html
from bench.report.render_latex import render_latex
from bench.report.render_markdown import render_markdown


def write_report(run_dir: str | Path, figures: bool = True) -> dict[str, Path]:
    """Write the report files of ``run_dir``; returns their paths by kind."""
    run_dir = Path(run_dir)
    data: ReportData = build_report_data(run_dir, figures=figures)
    paths = {
        "markdown": run_dir / "report.md",
        "html": run_dir / "report.html",
        "latex": run_dir / "tables.tex",
    }
    _write_atomic(paths["markdown"], render_markdown(data))
    _write_atomic(paths["html"], render_html(data, run_dir))
    _write_atomic(paths["latex"], render_latex(data))
    return paths


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
