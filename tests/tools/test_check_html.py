"""tools/check_html.py in headless chromium: a report fits the page, a too-wide page does not
(and an equally wide table inside its own scroll box is fine). Skipped without chromium."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from bench.report.model import ReportData, TaskSection
from bench.report.render_html import render_html
from bench.report.tables import build_table
from bench.store import Record
from bench.tasks.base import get_task

TOOL = Path(__file__).resolve().parents[2] / "tools" / "check_html.py"
pytestmark = pytest.mark.skipif(
    not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
    reason="chromium is not installed (Debian: apt-get install chromium)",
)


def _tool():
    spec = importlib.util.spec_from_file_location("check_html", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_tiny_report_fits_and_is_screenshot(tmp_path, capsys):
    records = [
        Record(
            "r",
            "calibration",
            {"classifier": c, "calibrator": k},
            {},
            s,
            "quick",
            {"ece": 0.1 + 0.01 * s + 0.02 * i, "accuracy": 0.9},
            cell_key=f"{c}{k}{s}",
        )
        for c in ("cnn", "mlp")
        for i, k in enumerate(("none", "temperature", "vector", "histogram", "isotonic"))
        for s in range(2)
    ]
    table = build_table(get_task("calibration"), records)
    section = TaskSection(name="calibration", table=table, timing=[], seeds=[0, 1])
    data = ReportData(run_id="r", env={}, sections=[section], n_ok=1, n_failed=0)
    page = tmp_path / "report.html"
    page.write_text(render_html(data, tmp_path))
    shot = tmp_path / "shot.png"
    assert _tool().main([str(page), "--screenshot", str(shot), "--width", "800"]) == 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ok: every element fits" in capsys.readouterr().out


def test_a_too_wide_page_fails_and_names_the_element(tmp_path, capsys):
    page = tmp_path / "wide.html"
    page.write_text(
        "<!doctype html><html><body><p>fits</p><div id='wide' style='width:3000px'>x</div>"
        "<div style='overflow-x:auto'><table style='width:4000px'><tr><td>boxed</td></tr>"
        "</table></div></body></html>"
    )
    assert _tool().main([str(page)]) == 1
    out = capsys.readouterr().out
    assert "1 element(s) wider" in out and "<div#wide>" in out and "boxed" not in out


def test_missing_page_is_a_usage_error(tmp_path):
    assert _tool().main([str(tmp_path / "nope.html")]) == 2
